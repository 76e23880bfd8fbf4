import Foundation
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// A real gRPC app and client (Python grpcio) through Pinhole: relay and agent over TLS,
/// and the agent's embedded relay, the agent speaking h2c to the app.
@Suite("gRPC through the tunnel (grpcio)", .serialized, .timeLimit(.minutes(5)))
struct GRPCTests {
    enum Path: String, CaseIterable, CustomTestStringConvertible {
        case relayAndAgent = "relay + agent"
        case embedded = "embedded relay"

        var testDescription: String { rawValue }

        func start(appPort: Int) async throws -> GRPCPath {
            switch self {
            case .relayAndAgent: return try await .relayAndAgent(appPort: appPort)
            case .embedded: return try await .embedded(target: "h2c://127.0.0.1:\(appPort)")
            }
        }
    }

    @Test(
        "unary (with trailers), server/client/bidi streaming, an error status, a deadline, 100 concurrent calls",
        arguments: Path.allCases)
    func calls(path: Path) async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await path.start(appPort: app.port)
        defer {
            pinhole.stop()
            app.stop()
        }
        let (status, output) = try await pinhole.run([
            "unary", "server_stream", "client_stream", "bidi", "error", "deadline", "concurrent",
        ])
        #expect(status == 0, "\(output)")
        for name in ["unary", "server_stream", "client_stream", "bidi", "error", "deadline", "concurrent"] {
            #expect(output.contains("ok \(name) "), "\(name): \(output)")
        }
        // The expired deadline reaches the app as a cancelled call.
        try await app.process.waitForOutput { $0.contains("cancelled Hold") }
    }

    @Test("a client's cancellation reaches the app", arguments: Path.allCases)
    func cancellation(path: Path) async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await path.start(appPort: app.port)
        defer {
            pinhole.stop()
            app.stop()
        }
        let client = try pinhole.client(["cancel"])
        try await app.process.waitForOutput { $0.contains("holding") }
        client.send("go\n")
        try await app.process.waitForOutput { $0.contains("cancelled Hold") }
        let (status, output) = await client.waitForExit()
        #expect(status == 0, "\(output)")
    }

    @Test("64 MiB streamed each way: checksums match, Pinhole's memory stays bounded", arguments: Path.allCases)
    func bulk(path: Path) async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await path.start(appPort: app.port)
        defer {
            pinhole.stop()
            app.stop()
        }
        let before = pinhole.processes.map { residentMemoryBytes(ofProcess: $0.processIdentifier) }
        let (status, output) = try await pinhole.run(["bulk_down", "bulk_up"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("ok bulk_down \(64 << 20) bytes") && output.contains("ok bulk_up \(64 << 20) bytes"))
        for (process, start) in zip(pinhole.processes, before) {
            // Buffering a body whole would take 64 MiB; windows and watermarks keep each
            // hop to a few MiB.
            let growth = peakResidentMemoryBytes(ofProcess: process.processIdentifier) - start
            #expect(growth < 32 << 20, "\(process.commandLine): RSS grew by \(growth >> 20) MiB")
        }
    }

    @Test("an app's RST_STREAM reaches the client with its code", arguments: Path.allCases)
    func appReset(path: Path) async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await path.start(appPort: app.port)
        defer {
            pinhole.stop()
            app.stop()
        }
        // grpcio resets (INTERNAL_ERROR) a call that lacks `te: trailers`.
        let url = "http://\(pinhole.address)/pinhole.test.Echo/Unary"
        let nghttp = try ChildProcess(
            "nghttp",
            [
                "-v", "-H", ":authority: \(pinhole.authority ?? pinhole.address)", "-H",
                "content-type: application/grpc", "-d", "/dev/null", url,
            ])
        let (_, output) = await nghttp.waitForExit()
        #expect(output.contains("recv RST_STREAM frame"), "\(output)")
        #expect(output.contains("error_code=INTERNAL_ERROR(0x02)"), "\(output)")
    }

    @Test("the app down: UNAVAILABLE with the words of the 502", arguments: Path.allCases)
    func appDown(path: Path) async throws {
        let app = try await GRPCApp.start()
        app.stop()
        _ = await app.process.waitForExit()
        let pinhole = try await path.start(appPort: app.port)
        defer { pinhole.stop() }
        let (status, output) = try await pinhole.run(["unavailable"])
        #expect(status == 0, "\(output)")
        // The relay path's agent was given the bare port (localhost), the embedded one an address.
        #expect(output.contains("UNAVAILABLE: pinhole: the agent could not reach h2c://"), "\(output)")
        #expect(output.contains(":\(app.port): connection refused"), "\(output)")
    }

    @Test("a gRPC call to an agent that speaks HTTP/1.1 to its app: INTERNAL, naming --app-protocol h2c")
    func http1App() async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await GRPCPath.embedded(target: "127.0.0.1:\(app.port)")
        defer {
            pinhole.stop()
            app.stop()
        }
        let (status, output) = try await pinhole.run(["needs_h2c"])
        #expect(status == 0, "\(output)")
    }

    @Test("the agent's request log: HTTP/2, the gRPC method and its grpc-status, through the relay")
    func records() async throws {
        let app = try await GRPCApp.start()
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port, appProtocol: .h2c))
        defer {
            app.stop()
            Task {
                await agent.stop()
                await relay.stop()
            }
        }
        _ = try await agent.tunnel()
        let path = GRPCPath(
            address: "127.0.0.1:\(relay.addresses.publicPort)", authority: "demo.\(TestRelay.domain)", processes: [])
        let (status, output) = try await path.run(["unary", "error"])
        #expect(status == 0, "\(output)")
        let events = try await agent.events { events in
            events.filter { if case .request = $0 { return true } else { return false } }.count >= 2
        }
        let records = events.compactMap { event -> ExchangeRecord? in
            if case .request(let record) = event { return record } else { return nil }
        }
        #expect(records.map(\.protocol) == ["HTTP/2", "HTTP/2"])
        #expect(records.map(\.grpcMethod) == ["/pinhole.test.Echo/Unary", "/pinhole.test.Echo/Fail"])
        #expect(records.map(\.grpcStatus) == [0, 9])
    }

    @Test("no agent connected: UNAVAILABLE naming the host, from the relay")
    func agentGone() async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await GRPCPath.relayAndAgent(appPort: app.port)
        defer {
            pinhole.stop()
            app.stop()
        }
        let agent = pinhole.processes[1]
        agent.terminate()
        _ = await agent.waitForExit()
        let (status, output) = try await pinhole.run(["unavailable"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("UNAVAILABLE: pinhole: the agent for bulk.tunnels.test is not connected"), "\(output)")
    }
}
