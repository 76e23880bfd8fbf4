import ArgumentParser
import Foundation
import Logging
import PinholeCore
import PinholeRelay

// MARK: Checking the options

extension RelayCommand {
    public func validate() throws {
        if tunnelPorts != nil, domain != nil {
            throw ValidationError("--tunnel-ports and --domain are alternatives; give one")
        }
        _ = try normalisedDomain()
        for (flag, port) in [("--public-port", publicPort), ("--agent-port", agentPort)]
        where !(0...65535).contains(port) {
            throw ValidationError("\(flag) \(port) is not a port; give a number from 1 to 65535 (0 picks a free one)")
        }
        if publicPort == agentPort, publicPort != 0 {
            throw ValidationError("--public-port and --agent-port are both \(publicPort); give them different ports")
        }
        if let range = try portRange() {
            let given = tunnelPorts.map { "--tunnel-ports \($0)" }
            let named =
                given
                ?? "the default --tunnel-ports, \(range.lowerBound)-\(range.upperBound) (the 100 ports after --public-port),"
            if range.contains(publicPort) {
                throw ValidationError("\(named) includes --public-port \(publicPort); give a range without it")
            }
            if range.contains(agentPort) {
                throw ValidationError(
                    "\(named) includes --agent-port \(agentPort); "
                        + (given == nil
                            ? "give --tunnel-ports A-B without it, or another --agent-port"
                            : "give a range without it"))
            }
        }
        if (publicCert == nil) != (publicKey == nil) {
            throw ValidationError("--public-cert and --public-key go together; give both (or neither, to use --cert)")
        }
        if keepalive < 1 { throw ValidationError("--keepalive must be at least 1 second") }
        if idleTimeout < 0 { throw ValidationError("--idle-timeout must be 0 (never) or a number of seconds") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if maxTunnels < 1 || maxTunnelsPerToken < 1 {
            throw ValidationError("--max-tunnels and --max-tunnels-per-token must be at least 1")
        }
        if maxNamesPerToken < maxTunnelsPerToken {
            throw ValidationError(
                "--max-names-per-token must be at least --max-tunnels-per-token (\(maxTunnelsPerToken))")
        }
        if maxAliases < 0 { throw ValidationError("--max-aliases must be 0 or more") }
        if forgetAfter < 0 { throw ValidationError("--forget-after must be 0 (for ever) or a number of days") }
        if tokenChecks < 1 { throw ValidationError("--token-checks must be at least 1") }
        if maxInFlightPerAddress < 1 || maxInFlightPerTunnel < 1 {
            throw ValidationError("--max-in-flight-per-address and --max-in-flight-per-tunnel must be at least 1")
        }
        for (flag, value) in [
            ("--max-connections", maxConnections), ("--max-connections-per-address", maxConnectionsPerAddress),
            ("--max-agent-connections", maxAgentConnections),
            ("--max-agent-connections-per-address", maxAgentConnectionsPerAddress),
        ] where value < 1 {
            throw ValidationError("\(flag) must be at least 1")
        }
        if inFlightWait < 0 { throw ValidationError("--in-flight-wait must be 0 or a number of seconds") }
        if stallTimeout < 0 { throw ValidationError("--stall-timeout must be 0 (never) or a number of seconds") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level \(logLevel) is not one of trace, debug, info, notice, warning, error")
        }
        try validateTokens()
    }

    /// Tokens the operator gave must be long enough; a generated one always is.
    private func validateTokens() throws {
        for token in tokens {
            if let problem = TokenStrength.problem(token, from: "--token") { throw ValidationError(problem) }
        }
        let environment = ProcessInfo.processInfo.environment["PINHOLE_TOKENS"]
        let fromFile: [String]
        do {
            fromFile = try RelayTokens.operatorTokens(given: [], file: tokenFile, environment: nil)
        } catch {
            throw ValidationError(error.description)
        }
        for token in fromFile {
            if let problem = TokenStrength.problem(token, from: "--token-file \(tokenFile ?? "")") {
                throw ValidationError(problem)
            }
        }
        for token in (try? RelayTokens.operatorTokens(given: [], file: nil, environment: environment)) ?? [] {
            if let problem = TokenStrength.problem(token, from: "PINHOLE_TOKENS") { throw ValidationError(problem) }
        }
    }

    /// `--domain` in lower case without a leading or trailing dot, or an error saying
    /// what is wrong with it.
    func normalisedDomain() throws -> String? {
        guard let domain else { return nil }
        let normalised = domain.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        if let problem = DNS1123.subdomainViolation(normalised) {
            throw ValidationError("--domain \(domain): \(problem)")
        }
        return normalised
    }

    func portRange() throws -> ClosedRange<Int>? {
        guard let tunnelPorts else { return domain == nil ? (publicPort + 1)...(publicPort + 100) : nil }
        let parts = tunnelPorts.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], low <= high else {
            throw ValidationError("--tunnel-ports takes a range such as 20000-20099")
        }
        guard low >= 1, high <= 65535 else { throw ValidationError("--tunnel-ports must lie within 1-65535") }
        return low...high
    }
}
