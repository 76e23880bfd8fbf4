import Foundation
import NIOCore
import PinholeAgent
import PinholeCore
import PinholeTLS
import PinholeTestSupport
import Testing

@Suite("Tunnel end to end: relay, agent and app in one process", .timeLimit(.minutes(3)))
struct TunnelTests {
    /// A relay, an agent tunnelling to a fresh local app, and the app.
    private func tunnel(
        name: String = "demo", keepalive: TimeAmount = .seconds(15)
    ) async throws -> (TestRelay, TestAgent, LocalApp) {
        let (relay, agent, app) = try await startTunnel(name: name, keepalive: keepalive)
        let info = try await agent.tunnel()
        #expect(info.authority == "\(name).\(TestRelay.domain):\(relay.addresses.publicPort)")
        return (relay, agent, app)
    }

    @Test("GET and POST pass through, with X-Forwarded-* appended and hop-by-hop fields removed")
    func getAndPost() async throws {
        let (relay, agent, app) = try await tunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }

        let get = try await curl(relay.curl("demo", "/hello"))
        #expect(get.status == 0 && get.output == "Hello, world!")

        let post = try await curl(
            relay.curl("demo", "/echo?x=1", ["-X", "POST", "--data-binary", "payload with bytes"]))
        #expect(post.output == "payload with bytes")

        let headers = try await curl(
            relay.curl(
                "demo", "/headers",
                [
                    "-H", "X-Forwarded-For: 10.9.8.7", "-H", "Connection: keep-alive, x-secret-hop", "-H",
                    "X-Secret-Hop: 1",
                    "-H", "X-Custom: kept",
                ]))
        #expect(headers.output.contains("x-forwarded-for: 10.9.8.7, 127.0.0.1"))
        #expect(headers.output.contains("x-forwarded-proto: http"))
        #expect(headers.output.contains("x-forwarded-host: demo.tunnels.test:\(relay.addresses.publicPort)"))
        #expect(headers.output.contains("host: demo.tunnels.test:\(relay.addresses.publicPort)"))
        #expect(headers.output.contains("x-custom: kept"))
        #expect(!headers.output.contains("x-secret-hop"), "a field named in Connection must not be forwarded")

        let head = try await curl(relay.curl("demo", "/hello", ["-I"]))
        #expect(head.output.contains("HTTP/1.1 200") && head.output.contains("content-length: 13"))
    }

    @Test("a server-sent event arrives before the response is finished")
    func serverSentEvents() async throws {
        let (relay, agent, app) = try await tunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        let stream = try ChildProcess("curl", relay.curl("demo", "/events", ["-N"]))
        try await stream.waitForOutput { $0.contains("data: first") }
        app.releaseEvents()
        let (status, output) = await stream.waitForExit()
        #expect(status == 0 && output == "data: first\n\ndata: second\n\n")
    }

    @Test("200 concurrent requests")
    func concurrentRequests() async throws {
        let (relay, agent, app) = try await tunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        let host = "demo.\(TestRelay.domain):\(relay.addresses.publicPort)"
        var arguments = [
            "-sS", "--no-progress-meter", "--parallel", "--parallel-immediate", "--parallel-max", "200",
            "--resolve", "\(host):127.0.0.1", "-w", "%{http_code} %{size_download}\\n",
        ]
        for index in 0..<200 { arguments += ["-o", "/dev/null", "http://\(host)/slow?ms=\(index % 5 * 20)"] }
        let (status, output) = try await curl(arguments)
        let lines = output.split(separator: "\n")
        #expect(status == 0)
        #expect(lines.count == 200)
        #expect(lines.allSatisfy { $0.hasPrefix("200 ") }, "\(lines.filter { !$0.hasPrefix("200 ") })")
    }

    @Test("a request held by the app for longer than the keepalive interval completes")
    func heldRequest() async throws {
        // Two PINGs each way while the request waits. Not 1 or 2 s: a PING must be
        // answered within an interval, and this process runs the other suites at the same
        // time on two cores, which has delayed an answer past two seconds.
        let (relay, agent, app) = try await tunnel(keepalive: .seconds(3))
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        let (status, output) = try await curl(relay.curl("demo", "/slow?ms=7000"))
        #expect(status == 0 && output == "slept 7000 ms", "\(output)")
        #expect(!agent.recorded.contains { if case .disconnected = $0 { true } else { false } }, "\(agent.recorded)")
    }

    @Test("--request-timeout on the agent: a request the app sits on gets 504")
    func requestTimeout() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), requestTimeout: .seconds(3))
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        _ = try await agent.tunnel()
        let (_, output) = try await curl(relay.curl("demo", "/slow?ms=30000", ["-w", "\\n%{http_code}"]))
        #expect(output.hasSuffix("504"), "\(output)")
        #expect(output.contains("no response within 3 s"))
        let (_, fast) = try await curl(relay.curl("demo", "/slow?ms=10"))
        #expect(fast == "slept 10 ms", "a quick request on the same tunnel is unaffected")
    }

    @Test("the app down: 502 naming the target and the reason")
    func appDown() async throws {
        let (relay, agent, app) = try await tunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop()
            }
        }
        let port = app.port
        await app.stop()
        let (_, output) = try await curl(relay.curl("demo", "/hello", ["-w", "\\n%{http_code}"]))
        #expect(output.hasSuffix("502"))
        #expect(output.contains("could not reach http://127.0.0.1:\(port): connection refused"), "\(output)")
    }

    @Test("no agent connected: 503 naming the host; unknown host: 404 listing nothing")
    func noAgent() async throws {
        let (relay, agent, app) = try await tunnel()
        defer {
            Task {
                await relay.stop(); await app.stop()
            }
        }
        await agent.stop()
        // The relay learns of the disconnect from the closed connection; wait for it.
        while relay.relay.connectedTunnels > 0 {
            try Task.checkCancellation()  // the suite's time limit ends a relay that never notices
            await Task.yield()
        }
        let (_, output) = try await curl(relay.curl("demo", "/hello", ["-w", "\\n%{http_code}"]))
        #expect(output.hasSuffix("503"))
        #expect(output.contains("the agent for demo.tunnels.test is not connected"), "\(output)")
        let unknown = try await curl(relay.curl("nobody", "/", ["-w", "\\n%{http_code}"]))
        #expect(unknown.output.hasSuffix("404") && unknown.output.contains("no tunnel for nobody.tunnels.test"))
        #expect(!unknown.output.contains("demo"))
    }

    @Test("a malformed request gets 400 with a reason")
    func malformedRequest() async throws {
        let (relay, agent, app) = try await tunnel()
        defer {
            Task {
                await agent.stop(); await relay.stop(); await app.stop()
            }
        }
        let (_, output) = try await curl([
            "-sS", "-w", "\\n%{http_code}", "-H", "Host:", "--http1.0",
            "http://127.0.0.1:\(relay.addresses.publicPort)/",
        ])
        #expect(output.hasSuffix("400") && output.contains("no Host header"), "\(output)")
    }
}
