import Foundation
import PinholeTestSupport
import Testing

/// The Python gRPC app of Tests/scripts/grpc_app.py, listening on a loopback port.
struct GRPCApp {
    let process: ChildProcess
    let port: Int

    static func start() async throws -> GRPCApp {
        let process = try ChildProcess(try testPython(), [testScript("grpc_app.py")])
        let banner = try await process.waitForOutput { $0.contains("listening ") }
        let port = try #require(capture(#"listening (\d+)"#, in: banner).flatMap { Int($0) })
        return GRPCApp(process: process, port: port)
    }

    func stop() {
        process.terminate()
    }
}

/// Where a gRPC client reaches the app through Pinhole: an address, and the
/// `:authority` to send (a tunnel's name), plus the Pinhole processes to measure.
struct GRPCPath {
    let address: String
    let authority: String?
    let processes: [ChildProcess]
    /// The relay's certificate, when it serves the public side over TLS.
    var certificate: String? = nil

    /// Runs grpc_client.py with `cases`; returns its exit status and output.
    func run(_ cases: [String], tls: String? = nil) async throws -> (status: Int32, output: String) {
        try await client(cases, tls: tls).waitForExit()
    }

    func client(_ cases: [String], tls: String? = nil) throws -> ChildProcess {
        var arguments = [testScript("grpc_client.py"), address]
        if let authority { arguments += ["--authority", authority] }
        if let tls = tls ?? certificate { arguments += ["--tls", tls] }
        return try ChildProcess(try testPython(), arguments + cases)
    }

    func stop() {
        for process in processes.reversed() { process.terminate() }
    }

    /// A relay and an agent as processes, the agent speaking h2c to the app on `appPort`.
    static func relayAndAgent(
        appPort: Int, relayArguments: [String] = [], agentArguments: [String] = ["--app-protocol", "h2c"]
    ) async throws -> GRPCPath {
        let tunnel = try await TunnelProcesses.start(
            appPort: appPort, relayArguments: relayArguments, agentArguments: agentArguments)
        let port = try #require(tunnel.host.split(separator: ":").last.map(String.init))
        let tls = relayArguments.contains("--public-tls")
        return GRPCPath(
            address: "127.0.0.1:\(port)", authority: tunnel.host, processes: [tunnel.relay, tunnel.agent],
            certificate: tls ? tunnel.directory + "/certs/relay.crt" : nil)
    }

    /// An agent process with its embedded relay, forwarding to `target`.
    static func embedded(target: String, arguments: [String] = []) async throws -> GRPCPath {
        let agent = try ChildProcess(
            builtExecutablesDirectory + "/agent",
            [target, "--bind", "127.0.0.1", "--public-port", "0", "--log-format", "json", "--quiet"] + arguments)
        let ready = try await agent.waitForOutput { $0.contains(#""event":"tunnel_ready""#) }
        let port = try #require(capture(#""port":(\d+)"#, in: ready))
        return GRPCPath(address: "127.0.0.1:\(port)", authority: nil, processes: [agent])
    }
}

func capture(_ pattern: String, in text: String) -> String? {
    guard let regex = try? NSRegularExpression(pattern: pattern),
        let match = regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)),
        let range = Range(match.range(at: 1), in: text)
    else { return nil }
    return String(text[range])
}
