import Foundation
import NIOCore
import NIOPosix
import PinholeInspector
import Testing

/// Who may use the inspector: its own address only (DNS rebinding), and writes from
/// its own page or from no page at all (CSRF).
@Suite("Inspector safety", .timeLimit(.minutes(1)))
struct InspectorSafetyTests {
    @Test("a Host that is not the inspector's own address is refused, reads and writes alike")
    func foreignHost() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        for (method, path) in [("GET", "/"), ("GET", "/api/requests"), ("DELETE", "/api/requests")] {
            let refused = try await harness.api(
                method, path, headers: ["Host: attacker.example:\(harness.server.port)"])
            #expect(refused.status == 403, "\(method) \(path)")
            #expect(refused.body.contains("answers only to its own address"))
        }
        #expect(
            try await harness.api("GET", "/api/requests", headers: ["Host: localhost:\(harness.server.port)"]).status
                == 200)
        #expect(try await harness.api("GET", "/api/requests").status == 200)
        let page = try await harness.api("GET", "/")
        #expect(page.status == 200 && page.body.contains("<title>Pinhole inspector</title>"))
    }

    @Test("writes with a foreign Origin are refused; with the page's own Origin, or none, they pass")
    func crossOriginWrites() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        _ = try await harness.send("/hello")
        let record = try await harness.waitForRecord { $0.path == "/hello" && $0.state == .complete }
        let seen = harness.app.requestsSeen

        let foreign = try await harness.api(
            "POST", "/api/requests/\(record.id)/replay?wait=1", headers: ["Origin: https://attacker.example"])
        #expect(foreign.status == 403)
        #expect(try await harness.api("DELETE", "/api/requests", headers: ["Origin: null"]).status == 403)
        #expect(harness.app.requestsSeen == seen, "a refused replay reached the app")
        #expect(harness.inspector.store.record(record.id) != nil, "a refused DELETE cleared the list")

        let own = try await harness.api(
            "POST", "/api/requests/\(record.id)/replay?wait=1", headers: ["Origin: \(harness.inspectorURL)"])
        #expect(own.status == 201)
        #expect(harness.app.requestsSeen == seen + 1)
        // A read with a foreign Origin is answered: the browser keeps it from the other page (no CORS).
        #expect(
            try await harness.api("GET", "/api/requests", headers: ["Origin: https://attacker.example"]).status
                == 200)
    }

    @Test("a taken port moves the inspector to the next free one and says which was taken")
    func takenPort() async throws {
        let blocker = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { blocker.close(promise: nil) }
        let taken = try #require(blocker.localAddress?.port)
        let server = try await InspectorServer.start(inspector: Inspector(), host: "127.0.0.1", port: taken)
        defer { Task { await server.stop() } }
        #expect(server.portTaken == taken)
        #expect(server.port != taken && server.port > taken && server.port < taken + InspectorServer.portsToTry)
        #expect(server.url == "http://127.0.0.1:\(server.port)")
    }
}
