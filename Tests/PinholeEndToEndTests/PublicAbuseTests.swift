import Foundation
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// What strangers on the public port can do without a token: none of it may end or
/// starve a tunnel. Bounded in count and time, loopback only.
@Suite("Public abuse: strangers cannot take a tunnel down", .timeLimit(.minutes(4)))
struct PublicAbuseTests {
    @Test("1,200 uploads aborted after their head reached the app leave the tunnel up")
    func abortedUploads() async throws {
        let app = try await LocalApp.start()
        // Caps high enough for every batch at once: the point is the resets.
        let relay = try await TestRelay.start { $0.inFlightCaps.perAddress = 2_000 }
        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
        _ = try await agent.tunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        // Each one makes the relay reset a stream the agent had opened to the app: more
        // than nghttp2's default rapid-reset allowance (1,000, then 33 a second).
        let run = try ChildProcess(
            "python3",
            [
                testScript("aborted_uploads.py"), String(relay.addresses.publicPort), "demo.\(TestRelay.domain)",
                "1200", "300",
            ])
        let (status, output) = await run.waitForExit()
        #expect(status == 0 && output.trimmingCharacters(in: .whitespacesAndNewlines) == "1200", "\(output)")
        #expect(app.requestsSeen >= 1200)

        let get = try await curl(relay.curl("demo", "/hello"))
        #expect(get.status == 0 && get.output == "Hello, world!", "\(get.output)")
        let dropped = agent.recorded.filter {
            switch $0 {
            case .disconnected, .reconnecting: true
            default: false
            }
        }
        #expect(dropped.isEmpty, "the tunnel dropped: \(dropped)")
    }

    /// Sends `request` on one connection and returns what the relay answered before closing.
    private func rawExchange(_ relay: TestRelay, _ request: String) async throws -> String {
        let run = try ChildProcess(
            "python3", [testScript("raw_client.py"), String(relay.addresses.publicPort), request])
        return await run.waitForExit().output
    }

    @Test("heads past the tunnel's limit get 431 naming it; one just under it reaches the app")
    func headLimits() async throws {
        let (relay, agent, app) = try await startTunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        let start = "GET /headers HTTP/1.1\\r\\nHost: demo.\(TestRelay.domain)\\r\\nConnection: close\\r\\n"
        // 72 KiB in one field: more than the head limit.
        let large = try await rawExchange(
            relay, start + "X-Big: " + String(repeating: "a", count: 72 * 1024) + "\\r\\n\\r\\n")
        #expect(large.hasPrefix("HTTP/1.1 431 "), "\(large.prefix(200))")
        #expect(large.contains("larger than 64 KiB"))
        // 25 KB of short fields: few bytes, but a header list (32 bytes a field) past 64 KiB.
        let many = (0..<2_500).map { "f\($0): v\\r\\n" }.joined()
        let counted = try await rawExchange(relay, start + many + "\\r\\n")
        #expect(counted.hasPrefix("HTTP/1.1 431 "), "\(counted.prefix(200))")
        // Just under the limit, with the X-Forwarded-* fields the relay adds: it goes through.
        let fits = try await rawExchange(
            relay, start + "X-Big: " + String(repeating: "a", count: 64 * 1024 - 600) + "\\r\\n\\r\\n")
        #expect(fits.hasPrefix("HTTP/1.1 200 "), "\(fits.prefix(200))")
    }

    @Test("stalled uploads from one address cannot fill a tunnel: the cap answers 503 fast, the stall timeout 408")
    func stalledUploads() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start { configuration in
            configuration.inFlightCaps = .init(perAddress: 40, perTunnel: 1024, waitLimit: .seconds(1))
            configuration.stallTimeout = .seconds(6)
        }
        // A tunnel of 64 streams, which 100 stalled uploads would fill without the caps.
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), maxConcurrentStreams: 64)
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        _ = try await agent.tunnel()
        let uploads = try ChildProcess(
            "python3",
            [testScript("stalled_uploads.py"), String(relay.addresses.publicPort), "demo.\(TestRelay.domain)", "100"])
        _ = try await uploads.waitForOutput { $0.contains("sent") }
        // Another loopback address has its own share, and the tunnel has room for it.
        let get = try await curl(relay.curl("demo", "/hello", ["--interface", "127.0.0.2", "--max-time", "20"]))
        #expect(get.status == 0 && get.output == "Hello, world!", "\(get.output)")

        let (_, output) = await uploads.waitForExit()
        struct Result: Decodable {
            let counts: [String: Int]
            let bodies: [String: String]
        }
        let json = try #require(output.split(separator: "\n").last.map(String.init))
        let result = try JSONDecoder().decode(Result.self, from: Data(json.utf8))
        // 40 hold their places until the stall timeout (408); the others wait 1 s in line
        // and get 503. On a loaded machine the last heads may arrive after the first
        // places were freed at 6 s, and then also stall: more 408s, never fewer.
        let timedOut = result.counts["HTTP/1.1 408 Request Timeout"] ?? 0
        let refused = result.counts["HTTP/1.1 503 Service Unavailable"] ?? 0
        #expect(timedOut >= 40 && refused > 0 && timedOut + refused == 100, "\(result.counts)")
        #expect(result.bodies["HTTP/1.1 503 Service Unavailable"]?.contains("--max-in-flight-per-address") ?? false)
        #expect(result.bodies["HTTP/1.1 408 Request Timeout"]?.contains("--stall-timeout") ?? false)
        #expect(result.counts["unanswered"] == 0)
    }
}
