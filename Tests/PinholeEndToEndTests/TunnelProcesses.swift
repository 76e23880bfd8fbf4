import Foundation
import PinholeTestSupport
import Testing

/// The built relay and agent as their own processes: their memory can be measured apart
/// from this test process (where other suites run at the same time), and either can be
/// frozen with SIGSTOP to play a peer that hangs with its connection open.
struct TunnelProcesses {
    let relay: ChildProcess
    let agent: ChildProcess
    let host: String

    /// Starts both on loopback, the agent tunnelling to `appPort` as "bulk"; extra flags
    /// go to each command line.
    static func start(
        appPort: Int, relayArguments: [String] = [], agentArguments: [String] = []
    ) async throws -> TunnelProcesses {
        let binaries = builtExecutablesDirectory
        let directory = try makeTemporaryDirectory("bulk-relay")
        let relay = try ChildProcess(
            binaries + "/relay",
            [
                "--bind", "127.0.0.1", "--public-port", "0", "--agent-port", "0", "--domain", "tunnels.test", "--token",
                "bulk-token-0123456789",
            ] + relayArguments,
            currentDirectory: directory)
        let banner = try await relay.waitForOutput { $0.contains("On your laptop") }
        let agentPort = try #require(Self.capture(#"agents   127\.0\.0\.1:(\d+)"#, in: banner))
        let publicPort = try #require(Self.capture(#"tunnels\.test:(\d+)"#, in: banner).flatMap { Int($0) })
        let pin = try #require(Self.capture(#"pin      (sha256:[0-9a-f]+)"#, in: banner))
        let agent = try ChildProcess(
            binaries + "/agent",
            [
                String(appPort), "--relay", "127.0.0.1:\(agentPort)", "--token", "bulk-token-0123456789", "--pin", pin,
                "--name", "bulk",
                "--log-format", "json", "--quiet",
            ] + agentArguments)
        try await agent.waitForOutput { $0.contains(#""event":"tunnel_ready""#) }
        return TunnelProcesses(
            relay: relay, agent: agent, host: "bulk.tunnels.test:\(publicPort)")
    }

    private static func capture(_ pattern: String, in text: String) -> String? {
        guard let regex = try? NSRegularExpression(pattern: pattern),
            let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
            let range = Range(match.range(at: 1), in: text)
        else { return nil }
        return String(text[range])
    }

    func curl(_ path: String, _ extra: [String] = []) -> [String] {
        ["-sS", "--resolve", "\(host):127.0.0.1"] + extra + ["http://\(host)\(path)"]
    }

    func stop() {
        agent.terminate()
        relay.terminate()
    }
}
