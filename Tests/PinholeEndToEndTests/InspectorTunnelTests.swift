import Foundation
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeInspector
import PinholeTestSupport
import Testing

/// The inspector on an agent that dials a relay (TLS + HTTP/2): requests arriving
/// through the tunnel are captured and replayed as with the embedded relay, and nothing
/// of the tunnel's credentials shows.
@Suite("Inspector through relay and agent", .timeLimit(.minutes(1)))
struct InspectorTunnelTests {
    @Test("a tunnelled request is captured and replays to the app; the relay token appears nowhere")
    func capturedThroughTheTunnel() async throws {
        let app = try await LocalApp.start()
        let relay = try await TestRelay.start()
        let inspector = Inspector()
        let server = try await InspectorServer.start(inspector: inspector, host: "127.0.0.1", port: 0)
        let task = await startInspectedAgent(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), inspector: inspector)
        defer {
            task.cancel()
            Task {
                await server.stop()
                await relay.stop()
                await app.stop()
            }
        }

        let sent = try await curl(relay.curl("inspected", "/echo", ["--data-binary", "through the tunnel"]))
        #expect(sent.output == "through the tunnel")
        let record = try await firstCompleted(inspector)
        #expect(record.path == "/echo" && record.status == 200)
        #expect(String(buffer: record.requestBody.kept) == "through the tunnel")
        #expect(record.authority.hasPrefix("inspected.\(TestRelay.domain)"))
        #expect(record.clientAddress == "127.0.0.1")

        let base = "http://127.0.0.1:\(server.port)"
        let seen = app.requestsSeen
        let replayed = try await curl(["-sS", "-X", "POST", "\(base)/api/requests/\(record.id)/replay?wait=1"])
        #expect(replayed.output.contains("\"replay_of\":\(record.id)"), "\(replayed.output)")
        #expect(app.requestsSeen == seen + 1)
        for path in ["/api/requests", "/api/requests/\(record.id)", "/api/har"] {
            let answer = try await curl(["-sS", base + path])
            #expect(answer.status == 0 && !answer.output.isEmpty)
            #expect(!answer.output.contains(TestRelay.token), "\(path) shows the relay token")
        }
    }

    @Test("an h2c app's request (nghttpd) is captured with the moment it reached the app")
    func h2cAppTiming() async throws {
        let app = try await Nghttpd.start(serving: ["file.txt": "from nghttpd\n"])
        defer { app.process.terminate() }
        let relay = try await TestRelay.start()
        let inspector = Inspector()
        let task = await startInspectedAgent(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port, appProtocol: .h2c),
            inspector: inspector)
        defer {
            task.cancel()
            Task { await relay.stop() }
        }

        let answer = try await curl(relay.curl("inspected", "/file.txt", ["--http2-prior-knowledge"]))
        #expect(answer.output == "from nghttpd\n")
        let record = try await firstCompleted(inspector)
        #expect(record.path == "/file.txt" && record.status == 200)
        #expect(record.timing.delivered != nil, "the h2c app's stream opened: the request reached the app")
        #expect(record.timing.queued != nil)
    }

    /// An agent named "inspected" behind `relay`, its app seen through `inspector`; returns once its tunnel is up.
    private func startInspectedAgent(
        relay: TestRelay, target: TargetAddress, inspector: Inspector
    ) async -> Task<Void, any Error> {
        let configuration = AgentConfiguration(
            target: target,
            mode: .relay(
                .init(
                    host: "127.0.0.1", port: relay.addresses.agentPort, token: TestRelay.token,
                    trust: .pinned(relay.identity.fingerprint), name: "inspected")))
        let ready = AsyncStream<Void>.makeStream()
        let agent = Agent(
            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger,
            wrapTarget: { inspector.capture($0) },
            events: { if case .tunnelReady = $0 { ready.continuation.yield() } })
        let task = Task { try await agent.run() }
        var readiness = ready.stream.makeAsyncIterator()
        await readiness.next()
        return task
    }

    /// The first request the inspector captured, once one is complete.
    private func firstCompleted(_ inspector: Inspector) async throws -> CapturedRequest {
        let changes = AsyncStream<Void>.makeStream()
        let token = inspector.store.observe { _ in changes.continuation.yield() }
        defer { inspector.store.stopObserving(token) }
        var changed = changes.stream.makeAsyncIterator()
        while inspector.store.all().first(where: { $0.state == .complete }) == nil { await changed.next() }
        return try #require(inspector.store.all().first)
    }
}
