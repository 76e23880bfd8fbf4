import Foundation
import NIOCore
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

    @Test("256 MiB up and 256 MiB down through relay and agent processes: checksums match, memory stays bounded")
    func bulk() async throws {
        let (file, digest) = try patternFile()
        defer { try? FileManager.default.removeItem(atPath: file) }
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(appPort: app.port)
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let relayBefore = residentMemoryBytes(ofProcess: tunnel.relay.processIdentifier)
        let agentBefore = residentMemoryBytes(ofProcess: tunnel.agent.processIdentifier)

        let upload = try await curl(tunnel.curl("/upload", ["-X", "POST", "-T", file, "-H", "Expect:"]))
        let command = (["curl"] + tunnel.curl("/download?bytes=\(Self.size)")).joined(separator: " ") + " | sha256sum"
        let (status, output) = await (try ChildProcess("bash", ["-o", "pipefail", "-c", command])).waitForExit()

        #expect(upload.status == 0)
        #expect(upload.output == "\(Self.size) \(digest)", "the app received something else")
        #expect(status == 0)
        #expect(output.hasPrefix(digest), "the download's checksum differs")
        // Buffering either body whole would need 256 MiB; flow control keeps each hop to
        // its windows and watermarks, so the peak stays close to where it started.
        let relayGrowth = peakResidentMemoryBytes(ofProcess: tunnel.relay.processIdentifier) - relayBefore
        let agentGrowth = peakResidentMemoryBytes(ofProcess: tunnel.agent.processIdentifier) - agentBefore
        #expect(relayGrowth < 64 * 1024 * 1024, "relay RSS grew by \(relayGrowth >> 20) MiB")
        #expect(agentGrowth < 64 * 1024 * 1024, "agent RSS grew by \(agentGrowth >> 20) MiB")
    }
}
