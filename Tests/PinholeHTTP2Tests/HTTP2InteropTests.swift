import Foundation
import NIOCore
import NIOPosix
import PinholeHTTP2
import PinholeTLS
import PinholeTestSupport
import Testing

/// Our HTTP/2 server answering "Hello, world!" (the `pinhole-h2-server` benchmark tool,
/// built beside the tests), over TLS with ALPN h2 or h2c; stopped at the end of `body`.
private func withServer(tls: Bool, _ body: (_ port: Int) async throws -> Void) async throws {
    let binary = builtExecutablesDirectory + "/pinhole-h2-server"
    try #require(FileManager.default.isExecutableFile(atPath: binary), "build the executables first: swift build")
    let server = try ChildProcess(binary, tls ? ["--tls"] : [])
    defer { server.terminate() }
    let output = try await server.waitForOutput { $0.contains("listening ") && $0.hasSuffix("\n") }
    let port = try #require(
        output.split(separator: "\n").first { $0.hasPrefix("listening ") }.flatMap { Int($0.dropFirst(10)) })
    try await body(port)
}

@Suite("HTTP/2 interop with nghttp2's own tools", .timeLimit(.minutes(2)))
struct HTTP2InteropTests {
    @Test("nghttp fetches from our server over TLS with ALPN h2")
    func nghttpOverTLS() async throws {
        try await withServer(tls: true) { port in
            let client = try ChildProcess("nghttp", ["-v", "https://127.0.0.1:\(port)/hello"])
            let (status, output) = await client.waitForExit()
            #expect(status == 0, "\(output)")
            #expect(output.contains("The negotiated protocol: h2"))
            #expect(output.contains(":status: 200"))
            #expect(output.contains("Hello, world!"))
        }
    }

    @Test("h2load -n 20000 -c 10 -m 100 against our server (h2c): zero failures")
    func h2loadH2C() async throws {
        try await withServer(tls: false) { port in
            let load = try ChildProcess(
                "h2load", ["-n", "20000", "-c", "10", "-m", "100", "http://127.0.0.1:\(port)/hello"])
            let (status, output) = await load.waitForExit()
            #expect(status == 0, "\(output)")
            #expect(
                output.contains(
                    "requests: 20000 total, 20000 started, 20000 done, 20000 succeeded, 0 failed, 0 errored, 0 timeout"),
                "\(output)")
            #expect(output.contains("status codes: 20000 2xx"), "\(output)")
        }
    }

    @Test("h2load over TLS (ALPN h2): zero failures")
    func h2loadTLS() async throws {
        try await withServer(tls: true) { port in
            let load = try ChildProcess(
                "h2load", ["-n", "5000", "-c", "4", "-m", "50", "https://127.0.0.1:\(port)/hello"])
            let (status, output) = await load.waitForExit()
            #expect(status == 0, "\(output)")
            #expect(output.contains("5000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(output)")
        }
    }

    @Test("our client fetches ten files concurrently from nghttpd, checksums matching")
    func clientAgainstNghttpd() async throws {
        let directory = try makeTemporaryDirectory("nghttpd")
        var expected: [String: String] = [:]
        for index in 0..<10 {
            var stream = PatternStream(totalBytes: 256 * 1024 + index * 10_007)
            var file = Data()
            while let chunk = stream.next(allocator: ByteBufferAllocator()) {
                file.append(contentsOf: chunk.readableBytesView)
            }
            file.replaceSubrange(0..<1, with: [UInt8(index)])
            try file.write(to: URL(fileURLWithPath: "\(directory)/file\(index)"))
            let hasher = SHA256Hasher()
            file.withUnsafeBytes { hasher.update($0) }
            expected["/file\(index)"] = hasher.finalize()
        }
        let port = try await ServerBootstrapProbe.bind()
        let server = try ChildProcess("nghttpd", ["--no-tls", "-v", "-a", "127.0.0.1", "-d", directory, "\(port)"])
        defer { server.terminate() }
        try await server.waitForOutput { $0.contains("listen 127.0.0.1:\(port)") }

        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: [String: String].self)
        let connecting = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = HTTP2ConnectionHandler(role: .client, eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandler(handler)
                    let collector = DigestCollector(count: 10, done: done)
                    for index in 0..<10 {
                        let path = "/file\(index)"
                        let headers: HTTP2Headers = [
                            (":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1:\(port)"),
                            (":path", path),
                        ]
                        _ = try handler.connection.openStream(
                            headers: headers, endStream: true, delegate: collector.delegate(for: path))
                    }
                }
            }
            .connect(host: "127.0.0.1", port: port)
        connecting.whenFailure { done.fail($0) }
        _ = try await connecting.get()
        let digests = try await done.futureResult.get()
        #expect(digests == expected)
    }
}

/// Hashes each stream's body and completes once all of them have ended.
private final class DigestCollector {
    private var remaining: Int
    private var digests: [String: String] = [:]
    private let done: EventLoopPromise<[String: String]>

    init(count: Int, done: EventLoopPromise<[String: String]>) {
        self.remaining = count
        self.done = done
    }

    func delegate(for path: String) -> any HTTP2StreamDelegate {
        PathDelegate(path: path, collector: self)
    }

    fileprivate func finished(path: String, digest: String?, error: HTTP2Error?) {
        if let error { done.fail(error) }
        digests[path] = digest
        remaining -= 1
        if remaining == 0 { done.succeed(digests) }
    }

    private final class PathDelegate: HTTP2StreamDelegate {
        let path: String
        let collector: DigestCollector
        let hasher = SHA256Hasher()
        var status: String?

        init(path: String, collector: DigestCollector) {
            self.path = path
            self.collector = collector
        }

        func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
            switch part {
            case .headers(let headers): status = headers[":status"]
            case .data(let data):
                hasher.update(data)
                stream.consumed(data.readableBytes)
            case .trailers, .end: break
            }
        }

        func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
            collector.finished(
                path: path, digest: status == "200" ? hasher.finalize() : "status \(status ?? "none")", error: error)
        }

        func streamWritabilityChanged(_ stream: HTTP2Stream) {}
    }
}
