import Foundation
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// The embedded relay keeps the relay's limits: open connections per address, and requests
/// in flight per address over HTTP/1.1 and HTTP/2 together.
@Suite("The embedded relay's connection and in-flight caps", .serialized, .timeLimit(.minutes(2)))
struct EmbeddedLimitsTests {
    @Test("a fourth connection from an address capped at 3 is closed unread; another address is served")
    func connectionsPerAddress() async throws {
        let app = try await LocalApp.start()
        let agent = TestAgent.start(relay: nil, target: TargetAddress(host: "127.0.0.1", port: app.port)) {
            $0.publicConnectionCaps = .init(total: 100, perAddress: 3)
        }
        let port = try await agent.tunnel().port
        var held: [RawConnection] = []
        for _ in 0..<3 {
            // Answered once, so the agent has accepted and counted it.
            let connection = try await RawConnection.open(to: port, from: "127.0.0.3")
            try await connection.send("GET /hello HTTP/1.1\r\nHost: embedded\r\n\r\n", awaiting: "Hello, world!")
            held.append(connection)
        }
        let over = try await RawConnection.open(to: port, from: "127.0.0.3")
        #expect(await over.closed() == "")
        let other = try await curl(["-sS", "--interface", "127.0.0.2", "http://127.0.0.1:\(port)/hello"])
        #expect(other.output == "Hello, world!")

        for connection in held { await connection.close() }
        await agent.stop()
        await app.stop()
    }

    @Test("two held requests fill an address's share: a third gets 503 naming the cap, over HTTP/1.1 and h2c")
    func inFlightPerAddress() async throws {
        let app = try await LocalApp.start()
        let agent = TestAgent.start(relay: nil, target: TargetAddress(host: "127.0.0.1", port: app.port)) {
            $0.inFlightCaps = .init(perAddress: 2, waitLimit: .milliseconds(300), countsTunnels: false)
        }
        let port = try await agent.tunnel().port
        var held: [RawConnection] = []
        for _ in 0..<2 {
            let connection = try await RawConnection.open(to: port, from: "127.0.0.3")
            try await connection.send("GET /events HTTP/1.1\r\nHost: embedded\r\n\r\n", awaiting: "data: first")
            held.append(connection)
        }
        for extra in [["--http1.1"], ["--http2-prior-knowledge"]] {
            let over = try await curl(
                ["-sS", "-w", "\n%{http_code}", "--interface", "127.0.0.3"] + extra + ["http://127.0.0.1:\(port)/hello"]
            )
            #expect(over.output.hasSuffix("\n503"), "\(extra): \(over.output)")
            #expect(over.output.contains("--max-in-flight-per-address"), "\(extra): \(over.output)")
        }
        let other = try await curl(["-sS", "--interface", "127.0.0.2", "http://127.0.0.1:\(port)/hello"])
        #expect(other.output == "Hello, world!")

        // The held two still complete, and give their places back.
        app.releaseEvents()
        for connection in held { try await connection.wait(for: "data: second") }
        let again = try await curl(["-sS", "--interface", "127.0.0.3", "http://127.0.0.1:\(port)/hello"])
        #expect(again.output == "Hello, world!")

        for connection in held { await connection.close() }
        await agent.stop()
        await app.stop()
    }
}
