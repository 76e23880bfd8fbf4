import Foundation
import PinholeCore
import PinholeTestSupport
import Testing

/// Ctrl-C of the built agent: requests in flight get a 503 that says so, the agent
/// prints `stopped` with the count, and a stop is never reported as a lost tunnel.
@Suite("A clean stop", .timeLimit(.minutes(2)))
struct StopTests {
    private let binaries = builtExecutablesDirectory

    /// raw_app.py, and the port it listens on.
    private func startApp() async throws -> (ChildProcess, Int) {
        let app = try ChildProcess("python3", ["-u", testScript("raw_app.py")])
        let port = try #require(
            Int(try await app.waitForOutput { $0.hasSuffix("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)))
        return (app, port)
    }

    /// Sends a request to `/hang` through `curl`, waits until the app has it, stops
    /// `agent` with SIGINT, and returns what curl got and what the agent printed.
    private func stopWithRequestInFlight(
        agent: ChildProcess, app: ChildProcess, curlArguments: [String]
    ) async throws -> (answer: String, status: Int32, output: String) {
        let client = try ChildProcess("curl", ["-sS", "-w", "\n%{http_code}"] + curlArguments)
        try await app.waitForOutput { $0.contains("hang\n") }
        kill(agent.processIdentifier, SIGINT)
        let answer = await client.waitForExit().output
        let (status, output) = await agent.waitForExit()
        return (answer, status, output)
    }

    @Test("embedded: Ctrl-C answers the request in flight with a 503, prints how many, then the restore line")
    func embedded() async throws {
        let (app, port) = try await startApp()
        defer { app.terminate() }
        let agent = try ChildProcess(
            binaries + "/agent",
            [
                "127.0.0.1:\(port)", "--bind", "127.0.0.1", "--public-port", "0", "--service", "greeter-service",
                "--namespace", "demo",
            ], currentDirectory: try makeTemporaryDirectory("stop"))
        defer { agent.terminate() }
        let header = try await agent.waitForOutput { $0.contains("  target ") }
        let publicPort = try #require(
            header.split(separator: "\n").first { $0.hasPrefix("  authority  127.0.0.1:") }
                .flatMap { Int($0.dropFirst("  authority  127.0.0.1:".count).prefix { $0.isNumber }) })
        let (answer, status, output) = try await stopWithRequestInFlight(
            agent: agent, app: app, curlArguments: ["http://127.0.0.1:\(publicPort)/hang"])
        #expect(answer == "pinhole: the agent stopped\n\n503")
        #expect(status == 0)
        #expect(
            output.hasSuffix(
                "\nstopped (1 request abandoned)\n"
                    + "Put the plain route back with:  kubectl apply -f pinhole-greeter-service.restore.yaml\n"),
            "\(output)")
    }

    @Test("through a relay: Ctrl-C answers with a 503, says stopped, and reports no lost tunnel or retry")
    func throughRelay() async throws {
        let (app, port) = try await startApp()
        defer { app.terminate() }
        let tunnel = try await TunnelProcesses.start(appPort: port, agentArguments: ["--log-format", "text"])
        defer { tunnel.stop() }
        let (answer, status, output) = try await stopWithRequestInFlight(
            agent: tunnel.agent, app: app, curlArguments: tunnel.curl("/hang"))
        #expect(answer == "pinhole: the agent stopped\n\n503")
        #expect(status == 0)
        #expect(output.hasSuffix("\nstopped (1 request abandoned)\n"), "\(output)")
        #expect(!output.contains("tunnel lost") && !output.contains("reconnecting"), "\(output)")

        // The README shows this header: the same lines, in the same order, with other values.
        let readme = try String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("README.md"), encoding: .utf8)
        func header(_ text: String) -> [String] {
            let lines = text.split(separator: "\n").map(String.init)
            guard let start = lines.firstIndex(of: "pinhole agent"),
                let end = lines[start...].firstIndex(where: { $0.hasPrefix("  target ") })
            else { return [] }
            return lines[start...end].map { String($0.prefix(13)) }
        }
        #expect(!header(readme).isEmpty && header(readme) == header(output), "\(output)")
    }

    @Test("stopping an agent whose connect to the relay hangs (SYNs unanswered) does not wait for the timeout")
    func stopDuringConnect() async throws {
        // A listener whose accept queue is full: the kernel drops further SYNs, so a
        // connect hangs as it does for a host behind a firewall that drops packets.
        let full = try ChildProcess("python3", ["-u", "-c", Self.fullListener])
        defer { full.terminate() }
        let port = try #require(
            Int(try await full.waitForOutput { $0.hasSuffix("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)))
        let relay = try await TestRelay.start()  // for an identity to pin; never reached
        defer { Task { await relay.stop() } }
        // Longer than the suite's time limit: only cancellation can end this wait in time.
        let agent = TestAgent.start(
            relay: relay, target: .default, agentPort: port, connectTimeout: .seconds(600))
        _ = try await agent.events { events in events.contains { if case .connecting = $0 { true } else { false } } }
        await agent.stop()
        #expect(!agent.recorded.contains { if case .reconnecting = $0 { true } else { false } })
    }

    /// Listens with a backlog of 0 and never accepts; fills the queue, then prints its port.
    static let fullListener = """
        import socket, time
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            try:
                filler.connect(listener.getsockname())
            except BlockingIOError:
                pass
            fillers.append(filler)
        print(listener.getsockname()[1], flush=True)
        time.sleep(3600)
        """
}
