import Foundation
import PinholeCore
import PinholeTestSupport
import Testing

/// HTTP/2 clients no one here wrote, against the public port, through the tunnel; and
/// HTTP/1.1 clients to an app that speaks only HTTP/2.
@Suite("Public HTTP/2 (h2c) through the tunnel", .serialized, .timeLimit(.minutes(3)))
struct PublicHTTP2Tests {
    @Test("curl --http2-prior-knowledge: GET and POST answered over HTTP/2")
    func curlPriorKnowledge() async throws {
        try await withTunnel { relay, _ in
            let get = try await curl(
                relay.curl("demo", "/hello", ["--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}"]))
            #expect(get.status == 0)
            #expect(get.output == "Hello, world!\n2 200", "\(get.output)")
            let post = try await curl(
                relay.curl("demo", "/echo", ["--http2-prior-knowledge", "--data-binary", "through h2c"]))
            #expect(post.output == "through h2c", "\(post.output)")
            let headers = try await curl(relay.curl("demo", "/headers", ["--http2-prior-knowledge"]))
            #expect(headers.output.contains("x-forwarded-proto: http"), "\(headers.output)")
            #expect(headers.output.contains("x-forwarded-host: demo.\(TestRelay.domain)"), "\(headers.output)")
        }
    }

    @Test("nghttp over h2c: 200 from the app, and an unknown :authority gets 404")
    func nghttp() async throws {
        try await withTunnel { relay, _ in
            let port = relay.addresses.publicPort
            let found = try ChildProcess(
                "nghttp", ["-v", "-H", ":authority: demo.\(TestRelay.domain)", "http://127.0.0.1:\(port)/hello"])
            let (status, output) = await found.waitForExit()
            #expect(status == 0, "\(output)")
            #expect(output.contains(":status: 200") && output.contains("Hello, world!"), "\(output)")
            let missing = try ChildProcess(
                "nghttp", ["-H", ":authority: nosuch.\(TestRelay.domain)", "http://127.0.0.1:\(port)/hello"])
            let (_, missingOutput) = await missing.waitForExit()
            #expect(missingOutput.contains("pinhole: no tunnel for nosuch.\(TestRelay.domain)"), "\(missingOutput)")
        }
    }

    /// RFC 9113 §8.1: a response complete before its request may end the request with
    /// RST_STREAM(NO_ERROR). nghttp uploads 32 MiB to an app that answers 413 at once and
    /// reads nothing: it gets the whole 413, then the reset, and stops sending. Before,
    /// the relay gave the window back for every byte and nghttp sent all of it.
    @Test("an answer before the request's end (413 to an upload) stops the client's upload with RST_STREAM(NO_ERROR)")
    func earlyAnswerStopsTheUpload() async throws {
        let size = 32 << 20
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pinhole-early-\(UUID()).bin")
        try Data(count: size).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        try await withTunnel { relay, _ in
            let upload = try ChildProcess(
                "nghttp",
                [
                    "-v", "-d", file.path, "-H", ":authority: demo.\(TestRelay.domain)",
                    "http://127.0.0.1:\(relay.addresses.publicPort)/early",
                ])
            let (_, output) = await upload.waitForExit()
            #expect(output.contains(":status: 413") && output.contains("too large"), "\(output.suffix(2000))")
            // nghttp prints a frame's error code on the line after it (its own GOAWAY at
            // the end says NO_ERROR too, so the reset's own line is the one read).
            let lines = output.split(separator: "\n")
            let reset = lines.firstIndex { $0.contains("recv RST_STREAM frame") }
            #expect(reset != nil, "\(output.suffix(2000))")
            if let reset {
                #expect(lines[reset + 1].contains("error_code=NO_ERROR(0x00)"), "\(lines[reset...].prefix(2))")
            }
            // What nghttp sent, frame by frame: "send DATA frame <length=16384, ...".
            let sent = lines.filter { $0.contains("send DATA frame") }.compactMap {
                line -> Int? in
                guard let start = line.range(of: "length=") else { return nil }
                return Int(line[start.upperBound...].prefix { $0.isNumber })
            }.reduce(0, +)
            #expect(sent < size, "nghttp sent \(sent) of \(size) bytes")
        }
    }

    @Test("h2load -n 5000 -c 10 -m 10 against the public port: zero failures")
    func h2load() async throws {
        try await withTunnel { relay, _ in
            let load = try ChildProcess(
                "h2load",
                [
                    "-n", "5000", "-c", "10", "-m", "10", "-H", ":authority: demo.\(TestRelay.domain)",
                    "http://127.0.0.1:\(relay.addresses.publicPort)/hello",
                ])
            let (status, output) = await load.waitForExit()
            #expect(status == 0, "\(output)")
            #expect(output.contains("5000 succeeded, 0 failed, 0 errored, 0 timeout"), "\(output)")
            #expect(output.contains("status codes: 5000 2xx"), "\(output)")
        }
    }

    @Test("an HTTP/2 connection that carries nothing is closed with GOAWAY (--idle-timeout 1)")
    func idleConnection() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(appPort: app.port, relayArguments: ["--idle-timeout", "1"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let port = try #require(tunnel.host.split(separator: ":").last.map(String.init))
        let client = try ChildProcess(try testPython(), [testScript("h2_idle_client.py"), port, tunnel.host])
        let (status, output) = await client.waitForExit()
        #expect(status == 0, "\(output)")
        #expect(output == "answered 200\ngoaway\nclosed\n", "\(output)")
    }

    @Test("a gRPC request over HTTP/1.1 gets 505 saying it needs HTTP/2")
    func grpcOverHTTP1() async throws {
        try await withTunnel { relay, _ in
            let answer = try await curl(
                relay.curl(
                    "demo", "/pkg.Service/Method",
                    ["--http1.1", "-H", "content-type: application/grpc", "--data-binary", "x", "-w", "\n%{http_code}"])
            )
            #expect(answer.output.hasSuffix("505"), "\(answer.output)")
            #expect(answer.output.contains("needs HTTP/2 end to end"), "\(answer.output)")
        }
    }

    @Test("HTTP/1.1 clients reach an h2c app (nghttpd): the agent translates")
    func http1ToH2CApp() async throws {
        let server = try await Nghttpd.start(serving: ["file.txt": "served over h2c\n"])
        defer { server.process.terminate() }
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: server.port, appProtocol: .h2c))
        defer {
            Task {
                await agent.stop()
                await relay.stop()
            }
        }
        _ = try await agent.tunnel()
        for _ in 0..<3 {
            let answer = try await curl(relay.curl("demo", "/file.txt", ["--http1.1", "-w", "%{http_version}"]))
            #expect(answer.output == "served over h2c\n1.1", "\(answer.output)")
        }
        let missing = try await curl(
            relay.curl("demo", "/nothing", ["--http1.1", "-o", "/dev/null", "-w", "%{http_code}"]))
        #expect(missing.output == "404")
        let records = try await agent.events { events in
            events.filter { if case .request = $0 { return true } else { return false } }.count >= 4
        }
        #expect(!records.isEmpty)
    }
}
