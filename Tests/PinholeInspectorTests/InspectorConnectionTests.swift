import Foundation
import PinholeTestSupport
import Testing

@testable import PinholeInspector

/// The inspector's connections over real sockets, with curl as the client: keep-alive,
/// Connection: close, HTTP/1.0, a body past the limit, and the live feed ending when
/// the server stops.
@Suite("Inspector connections", .timeLimit(.minutes(1)))
struct InspectorConnectionTests {
    @Test("keep-alive: curl asks twice on one connection; with Connection: close or HTTP/1.0, on two")
    func keepAlive() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        let url = harness.inspectorURL + "/api/requests"
        let twice = ["-w", "%{http_code} %{num_connects}\\n", "-o", "/dev/null", url, "-o", "/dev/null", url]
        let reused = try await curl(["-sS"] + twice)
        #expect(reused == "200 1\n200 0\n", "the second request did not reuse the connection")
        let closed = try await curl(["-sS", "-H", "Connection: close"] + twice)
        #expect(closed == "200 1\n200 1\n", "Connection: close kept the connection")
        let old = try await curl(["-sS", "-0", "-i", url])
        #expect(old.hasPrefix("HTTP/1.0 200"), "an HTTP/1.0 request got \(old.prefix(20))")
        #expect(old.lowercased().contains("connection: close"))
    }

    @Test("a body past the limit is answered 413 naming the limit, and nothing is replayed")
    func bodyTooLarge() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        _ = try await harness.send("/hello")
        let record = try await harness.waitForRecord { $0.path == "/hello" && $0.state == .complete }
        let seen = harness.app.requestsSeen
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("inspector-413-\(UUID()).json")
        try Data(repeating: UInt8(ascii: "a"), count: InspectorHTTPHandler.bodyLimit + 1).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let output = try await curl([
            "-sS", "-w", "\n%{http_code}", "-H", "content-type: application/json", "--data-binary", "@\(file.path)",
            harness.inspectorURL + "/api/requests/\(record.id)/replay?wait=1",
        ])
        #expect(output.hasSuffix("\n413"), "\(output.suffix(200))")
        #expect(output.contains("up to 16 MiB"))
        #expect(harness.app.requestsSeen == seen, "a refused replay reached the app")
    }

    @Test("stopping the server ends the live feed's stream, so the page's connection closes")
    func stopEndsFeed() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        let feed = try ChildProcess("curl", ["-sSN", "--max-time", "30", harness.inspectorURL + "/api/events"])
        defer { feed.terminate() }
        try await feed.waitForOutput { $0.contains("event: hello") }
        await harness.server.stop()
        let (status, output) = await feed.waitForExit()
        #expect(status == 0, "curl did not see the stream end cleanly: \(output)")
    }
}
