import Foundation
import NIOCore
import NIOPosix
import PinholeCore
import PinholeTLS
import PinholeTestSupport
import Testing

@Suite("Bulk transfers through the tunnel", .timeLimit(.minutes(5)))
struct BulkTransferTests {
    static let size = 256 * 1024 * 1024

    /// Writes the pattern to a file for curl to upload and returns the file and its SHA-256.
    private func patternFile() throws -> (path: String, digest: String) {
        let path = try makeTemporaryDirectory("bulk") + "/upload.bin"
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        var stream = PatternStream(totalBytes: Self.size)
        let hasher = SHA256Hasher()
        while let chunk = stream.next(allocator: ByteBufferAllocator()) {
            hasher.update(chunk)
            try handle.write(contentsOf: Data(chunk.readableBytesView))
        }
        return (path, hasher.finalize())
    }

    @Test("256 MiB up and 256 MiB down, checksums matching, memory bounded on relay and agent")
    func bulk() async throws {
        let (file, digest) = try patternFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
        defer { Task { await agent.stop(); await relay.stop(); await app.stop() } }
        _ = try await agent.tunnel()

        let baseline = residentMemoryBytes()
        let sampler = RSSSampler(eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        let upload = try await curl(relay.curl("demo", "/upload", ["-X", "POST", "-T", file, "-H", "Expect:"]))
        let command = (["curl"] + relay.curl("demo", "/download?bytes=\(Self.size)")).joined(separator: " ") + " | sha256sum"
        let download = try ChildProcess("bash", ["-o", "pipefail", "-c", command])
        let (status, output) = await download.waitForExit()
        let peak = sampler.stop()

        #expect(upload.status == 0)
        #expect(upload.output == "\(Self.size) \(digest)", "the app received something else")
        #expect(status == 0)
        #expect(output.hasPrefix(digest), "the download's checksum differs")
        // Relay, agent and app share this process. Buffering either body whole would
        // need 256 MiB; flow control keeps each hop to its windows and watermarks.
        #expect(peak - baseline < 96 * 1024 * 1024, "RSS grew by \((peak - baseline) >> 20) MiB")
    }
}
