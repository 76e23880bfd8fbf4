import Foundation
import PinholeCore
import PinholeTestSupport
import Testing

/// gRPC through the inspector with grpcio on both ends (Tests/scripts/grpc_app.py and
/// grpc_client.py), the agent speaking h2c to the app: the fields the log also writes,
/// the status and its decoded message, the timing, and a curl line that speaks HTTP/2.
@Suite("Inspector with gRPC", .timeLimit(.minutes(1)))
struct InspectorGRPCTests {
    static let scripts = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts")

    @Test("a gRPC call is listed as the log writes it, with its status, decoded message and queued time")
    func grpcCall() async throws {
        let app = try ChildProcess(try testPython(), [Self.scripts.appendingPathComponent("grpc_app.py").path])
        defer { app.terminate() }
        let banner = try await app.waitForOutput { $0.contains("listening ") }
        let port = try #require(
            banner.split(separator: " ").last.flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) })
        let harness = try await InspectorHarness.start(
            target: TargetAddress(host: "127.0.0.1", port: port, appProtocol: .h2c))
        defer { Task { await harness.stop() } }
        let client = try ChildProcess(
            try testPython(),
            [
                Self.scripts.appendingPathComponent("grpc_client.py").path, "127.0.0.1:\(harness.publicPort)", "unary",
                "error",
            ])
        let (status, output) = await client.waitForExit()
        #expect(status == 0, "\(output)")
        let unary = try await harness.waitForRecord { $0.path.hasSuffix("/Unary") && $0.state == .complete }
        let failed = try await harness.waitForRecord { $0.path.hasSuffix("/Fail") && $0.state == .complete }

        let summary = try await harness.json("/api/requests/\(unary.id)")
        #expect(summary["protocol"] as? String == "HTTP/2")
        #expect(summary["grpc_method"] as? String == "/pinhole.test.Echo/Unary")
        #expect(summary["grpc_status"] as? Int == 0)
        let timing = try #require(summary["timing"] as? [String: Any])
        #expect(timing["queued_ms"] is Double, "no queued time for an h2c target: \(timing)")
        let curlLine = try #require(summary["curl"] as? String)
        #expect(curlLine.contains("--http2-prior-knowledge"), "\(curlLine)")
        let trailers = try #require((summary["response"] as? [String: Any])?["trailers"] as? [[String: String]])
        #expect(trailers.contains { $0["name"] == "x-echo-trailer" && $0["value"] == "done" })

        let error = try await harness.json("/api/requests/\(failed.id)")
        #expect(error["grpc_status"] as? Int == 9)
        #expect(error["grpc_message"] as? String == "the cart is empty: 100% sure, ünïcode")

        let har = try object(try await harness.api("GET", "/api/har?ids=\(unary.id)").body)
        let entry = try #require(((har["log"] as? [String: Any])?["entries"] as? [[String: Any]])?.first)
        #expect((entry["request"] as? [String: Any])?["httpVersion"] as? String == "HTTP/2")
    }
}
