import Foundation
import NIOCore
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

@Suite("Caps on open connections: public per address and in all, agents apart", .timeLimit(.minutes(2)))
struct ConnectionCapTests {
    private func request(_ name: String) -> String {
        "GET /hello HTTP/1.1\r\nHost: \(name).\(TestRelay.domain)\r\nConnection: close\r\n\r\n"
    }

    /// Opens `count` connections from `source` and has each answered once, kept alive: the
    /// relay has then accepted and counted every one (a connect completes in the kernel
    /// before the relay accepts it, so a connection opened next could otherwise get in first).
    private func holdAccepted(
        _ count: Int, to port: Int, from source: String, tunnel: String
    ) async throws
        -> [RawConnection]
    {
        var held: [RawConnection] = []
        for _ in 0..<count {
            let connection = try await RawConnection.open(to: port, from: source)
            try await connection.send(
                "GET /hello HTTP/1.1\r\nHost: \(tunnel).\(TestRelay.domain)\r\n\r\n", awaiting: "Hello, world!")
            held.append(connection)
        }
        return held
    }

    @Test("a public address over its cap is closed before anything is read; other addresses are served")
    func publicPerAddress() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start {
            $0.publicConnectionCaps = .init(total: 100, perAddress: 3)
        }
        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
        _ = try await agent.tunnel()
        let port = relay.addresses.publicPort
        let held = try await holdAccepted(3, to: port, from: "127.0.0.3", tunnel: "demo")

        let over = try await RawConnection.open(to: port, from: "127.0.0.3")
        #expect(await over.closed() == "")
        let other = try await curl(relay.curl("demo", "/hello", ["--interface", "127.0.0.2"]))
        #expect(other.output == "Hello, world!")
        // The connections within the cap were kept, and serve.
        let answer = try await held[0].exchange(request("demo"))
        #expect(answer.hasPrefix("HTTP/1.1 200 ") && answer.hasSuffix("Hello, world!"), "\(answer)")

        for connection in held { await connection.close() }
        await agent.stop()
        await relay.stop()
        await app.stop()
    }

    @Test("public connections at the relay's total cap leave the agent port free: a new agent connects")
    func publicTotalLeavesAgents() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start {
            $0.publicConnectionCaps = .init(total: 3, perAddress: 3)
        }
        let port = relay.addresses.publicPort
        // An agent first, so the held connections can show they were accepted.
        let early = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), name: "early")
        _ = try await early.tunnel()
        let held = try await holdAccepted(3, to: port, from: "127.0.0.4", tunnel: "early")
        let over = try await RawConnection.open(to: port, from: "127.0.0.5")
        #expect(await over.closed() == "")

        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), name: "late")
        _ = try await agent.tunnel()
        let answer = try await held[1].exchange(request("late"))
        #expect(answer.hasSuffix("Hello, world!"), "\(answer)")

        for connection in held { await connection.close() }
        await agent.stop()
        await early.stop()
        await relay.stop()
        await app.stop()
    }

    @Test("the agent port has its own cap per address; agents from elsewhere still connect")
    func agentPerAddress() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start {
            $0.agentConnectionCaps = .init(total: 100, perAddress: 2)
        }
        let port = relay.addresses.agentPort
        var held: [RawConnection] = []
        for _ in 0..<2 { held.append(try await RawConnection.open(to: port, from: "127.0.0.6")) }
        let over = try await RawConnection.open(to: port, from: "127.0.0.6")
        #expect(await over.closed() == "")

        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
        _ = try await agent.tunnel()
        let answer = try await curl(relay.curl("demo", "/hello"))
        #expect(answer.output == "Hello, world!")

        for connection in held { await connection.close() }
        await agent.stop()
        await relay.stop()
        await app.stop()
    }
}

@Suite("The embedded relay's --allow", .timeLimit(.minutes(2)))
struct EmbeddedAllowTests {
    @Test("a client outside --allow gets 403 naming the flag, over HTTP/1.1 and h2c, and the app never sees it")
    func refused() async throws {
        let app = try await LocalApp.start()
        let agent = TestAgent.start(relay: nil, target: TargetAddress(host: "127.0.0.1", port: app.port)) {
            $0.allow = try! ClientAllowList(parsing: ["127.0.0.1/32"])
        }
        let tunnel = try await agent.tunnel()
        let url = "http://127.0.0.1:\(tunnel.port)/hello"

        let allowed = try await curl(["-sS", url])
        #expect(allowed.output == "Hello, world!")
        for extra in [["--http1.1"], ["--http2-prior-knowledge"]] {
            let stranger = try await curl(
                ["-sS", "-w", "\n%{http_code}", "--interface", "127.0.0.2"] + extra + [url])
            #expect(
                stranger.output
                    == "pinhole: this agent does not serve 127.0.0.2; its developer can allow it with --allow\n\n403",
                "\(extra)")
        }
        // Both refusals are in the request log, as Pinhole's answers.
        let events = try await agent.events { events in
            events.filter {
                if case .request(let record) = $0 { return record.status == 403 }
                return false
            }.count >= 2
        }
        let refusals = events.compactMap { event -> ExchangeRecord? in
            if case .request(let record) = event, record.status == 403 { return record }
            return nil
        }
        #expect(refusals.allSatisfy { $0.outcome == .answeredByPinhole(.clientNotAllowed(client: "127.0.0.2")) })
        #expect(refusals.map(\.protocol).sorted() == ["HTTP/1.1", "HTTP/2"])
        #expect(app.requestsSeen == 1)

        await agent.stop()
        await app.stop()
    }
}
