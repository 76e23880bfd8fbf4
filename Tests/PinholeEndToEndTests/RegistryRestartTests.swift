import Foundation
import NIOCore
import NIOPosix
import PinholeTestSupport
import Testing

/// The built relay, killed with SIGKILL and started again in the same folder, and built
/// agents with two tokens: names and dedicated ports keep their owners.
private struct RestartingRelay {
    static let tokens = (first: "first-token-0123456789", second: "second-token-0123456789")

    let directory: String
    let agentPort: Int
    let tunnelPorts: ClosedRange<Int>

    static func make() async throws -> RestartingRelay {
        let ports = try await freeRange(count: 7)
        return RestartingRelay(
            directory: try makeTemporaryDirectory("restart"), agentPort: ports.lowerBound,
            tunnelPorts: (ports.lowerBound + 1)...ports.upperBound)
    }

    /// Ports free a moment ago, one after another, below Linux's ephemeral range
    /// (32768-60999), so no test binding port 0 takes one while the relay is down.
    private static func freeRange(count: Int) async throws -> ClosedRange<Int> {
        for _ in 0..<50 {
            let low = Int.random(in: 20_000..<32_000)
            var free = true
            for port in low..<(low + count) where !(await isFree(port)) { free = false }
            if free { return low...(low + count - 1) }
        }
        throw TestFailure("found no \(count) free ports in a row")
    }

    private static func isFree(_ port: Int) async -> Bool {
        guard
            let probe = try? await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: "127.0.0.1", port: port).get()
        else { return false }
        try? await probe.close()
        return true
    }

    /// Starts the relay; returns it with the certificate pin from its banner.
    func start() async throws -> (ChildProcess, String) {
        let relay = try ChildProcess(
            builtExecutablesDirectory + "/relay",
            [
                "--bind", "127.0.0.1", "--public-port", "0", "--agent-port", String(agentPort), "--tunnel-ports",
                "\(tunnelPorts.lowerBound)-\(tunnelPorts.upperBound)", "--public-host", "127.0.0.1",
            ],
            environment: ["PINHOLE_TOKENS": "\(Self.tokens.first),\(Self.tokens.second)"],
            currentDirectory: directory)
        let banner = try await relay.waitForOutput { $0.contains("On your laptop") }
        return (relay, try #require(capture(#"pin      (sha256:[0-9a-f]+)"#, in: banner)))
    }

    func agent(_ name: String, token: String, appPort: Int, pin: String) throws -> ChildProcess {
        try ChildProcess(
            builtExecutablesDirectory + "/agent",
            [
                String(appPort), "--relay", "127.0.0.1:\(agentPort)", "--pin", pin, "--name", name, "--log-format",
                "json", "--quiet", "--inspect", "off",
            ],
            environment: ["PINHOLE_TOKEN": token])
    }
}

/// The ports of the tunnel_ready lines in `output`, in order.
private func readyPorts(in output: String) -> [Int] {
    output.split(separator: "\n").filter { $0.contains(#""event":"tunnel_ready""#) }
        .compactMap { capture(#""port":(\d+)"#, in: String($0)).flatMap { Int($0) } }
}

@Suite("Registry: a relay killed and started again keeps names and ports with their tokens", .timeLimit(.minutes(2)))
struct RegistryRestartTests {
    @Test("after kill -9, each tunnel gets its own port back and another token gets neither name nor port")
    func killedRelayKeepsOwners() async throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: builtExecutablesDirectory + "/relay"),
            "build the executables first: swift build")
        let app = try await LocalApp.start()
        let setup = try await RestartingRelay.make()
        var (relay, pin) = try await setup.start()
        let tokens = RestartingRelay.tokens
        let alpha = try setup.agent("alpha", token: tokens.first, appPort: app.port, pin: pin)
        defer {
            alpha.terminate(); relay.terminate()
            Task { await app.stop() }
        }
        let alphaPort = try #require(
            readyPorts(in: try await alpha.waitForOutput { !readyPorts(in: $0).isEmpty }).first)
        let beta = try setup.agent("beta", token: tokens.second, appPort: app.port, pin: pin)
        let betaPort = try #require(readyPorts(in: try await beta.waitForOutput { !readyPorts(in: $0).isEmpty }).first)
        beta.terminate()
        _ = await beta.waitForExit()

        kill(relay.processIdentifier, SIGKILL)
        _ = await relay.waitForExit()
        let file = try String(contentsOfFile: setup.directory + "/certs/registry.json", encoding: .utf8)
        #expect(file.contains("\"alpha\"") && file.contains("\"beta\""), "\(file)")
        #expect(!file.contains(tokens.first) && !file.contains(tokens.second), "digests only")
        (relay, pin) = try await setup.start()

        // alpha reconnects by itself, to its own port.
        let again = try await alpha.waitForOutput { readyPorts(in: $0).count >= 2 }
        #expect(readyPorts(in: again) == [alphaPort, alphaPort])
        // beta's name belongs to the second token: the first is refused, with name_taken's sentence.
        let squatter = try setup.agent("beta", token: tokens.first, appPort: app.port, pin: pin)
        let (status, refusal) = await squatter.waitForExit()
        #expect(status != 0)
        #expect(refusal.contains("the tunnel name 'beta' belongs to another token"), "\(refusal)")
        // Until beta is back, its port answers: a 503 naming it, not a refused connection.
        let away = try await curl(["-sS", "-w", "%{http_code}", "http://127.0.0.1:\(betaPort)/hello"])
        #expect(away.output.hasSuffix("503") && away.output.contains("127.0.0.1:\(betaPort)"), "\(away.output)")
        // A new name gets the port nobody owns, not beta's.
        let gamma = try setup.agent("gamma", token: tokens.first, appPort: app.port, pin: pin)
        defer { gamma.terminate() }
        let gammaPort = try #require(
            readyPorts(in: try await gamma.waitForOutput { !readyPorts(in: $0).isEmpty }).first)
        #expect(![alphaPort, betaPort].contains(gammaPort))
        let back = try setup.agent("beta", token: tokens.second, appPort: app.port, pin: pin)
        defer { back.terminate() }
        let backPort = try #require(readyPorts(in: try await back.waitForOutput { !readyPorts(in: $0).isEmpty }).first)
        #expect(backPort == betaPort, "beta's own port, after the relay restarted")
        let (_, hello) = try await curl(["-sS", "http://127.0.0.1:\(betaPort)/hello"])
        #expect(hello == "Hello, world!")
    }
}
