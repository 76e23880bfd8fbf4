import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PinholeCore
import PinholeRelay
import PinholeTLS
import PinholeTunnel

// MARK: Running the relay

extension RelayCommand {
    public func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "pinhole.relay")
        do {
            try await serve(logger: logger)
        } catch let error as RelayError {
            Terminal.error("relay: \(error)")
            throw ExitCode.failure
        }
    }

    private func serve(logger: Logger) async throws {
        let (tokenList, tokenNote) = try resolveTokens()
        let reachable = LocalAddresses.reachable()
        let domain = try normalisedDomain()
        var dnsNames = domain.map { [$0, "*.\($0)"] } ?? []
        var ipAddresses: [String] = []
        if let publicHost {
            if IPAddressLiteral.isValid(publicHost) {
                ipAddresses.append(publicHost)
            } else {
                dnsNames.append(publicHost)
            }
        }
        if dnsNames.isEmpty && ipAddresses.isEmpty { ipAddresses = reachable + ["127.0.0.1"] }
        let loaded = try RelayIdentity.loadOrGenerate(
            certificatePath: cert, keyPath: key, dnsNames: dnsNames, ipAddresses: ipAddresses)

        var configuration = try RelayConfiguration(
            bindHost: bind, publicPort: publicPort, agentPort: agentPort, domain: domain, publicHost: publicHost,
            tunnelPorts: try portRange(), tokens: tokenList, identity: loaded.identity)
        configuration.maxTunnels = maxTunnels
        configuration.maxTunnelsPerToken = maxTunnelsPerToken
        configuration.maxNamesPerToken = maxNamesPerToken
        configuration.maxAliases = maxAliases
        configuration.forgetAfter = forgetAfter == 0 ? nil : .hours(Int64(forgetAfter) * 24)
        configuration.registryPath = Self.registryPath(beside: cert)
        configuration.keepaliveInterval = .seconds(Int64(keepalive))
        configuration.requestTimeout = requestTimeout.map { .seconds(Int64($0)) }
        configuration.idleTimeout = idleTimeout == 0 ? nil : .seconds(Int64(idleTimeout))
        if let publicCert, let publicKey {
            do {
                configuration.publicTLS = try TLSIdentity.load(certificatePath: publicCert, keyPath: publicKey)
            } catch {
                throw RelayError.certificate("--public-cert/--public-key: \(error.description)")
            }
        } else if publicTls {
            configuration.publicTLS = loaded.identity
        }
        configuration.tokenChecksPer5Seconds = tokenChecks
        configuration.inFlightCaps = InFlightLimits.Caps(
            perAddress: maxInFlightPerAddress, perTunnel: maxInFlightPerTunnel, waitLimit: .seconds(Int64(inFlightWait))
        )
        configuration.stallTimeout = stallTimeout == 0 ? nil : .seconds(Int64(stallTimeout))
        configuration.agentConnectionCaps = .init(total: maxAgentConnections, perAddress: maxAgentConnectionsPerAddress)
        // Agents and tunnel ports (a listener each) come first: public clients get what is left.
        let fitted = FileDescriptorLimit.fit(
            publicConnections: maxConnections, besides: maxAgentConnections + maxTunnels)
        if let warning = fitted.warning { Terminal.error("relay: warning: \(warning)") }
        configuration.publicConnectionCaps = .init(
            total: fitted.publicConnections, perAddress: min(maxConnectionsPerAddress, fitted.publicConnections))

        let group =
            threads.map { MultiThreadedEventLoopGroup(numberOfThreads: $0) } ?? MultiThreadedEventLoopGroup.singleton
        let relay = Relay(configuration: configuration, group: group, logger: logger)
        let addresses = try await relay.start()
        printBanner(relay: relay, addresses: addresses, loaded: loaded, tokenNote: tokenNote, domain: domain)
        try await runUntilInterrupted { await relay.run() }
        await relay.shutdown()
    }

    /// The registry file: in the folder of the certificate, which the relay owns.
    static func registryPath(beside certificate: String) -> String {
        let folder = (certificate as NSString).deletingLastPathComponent
        return (folder.isEmpty ? "." : folder) + "/" + RelayConfiguration.registryFileName
    }

    /// Tokens from --token, --token-file and PINHOLE_TOKENS; when there are none, the
    /// token kept beside the certificate (made on first start).
    private func resolveTokens() throws -> ([String], String) {
        let resolved = try RelayTokens.resolve(
            given: tokens, file: tokenFile, environment: ProcessInfo.processInfo.environment["PINHOLE_TOKENS"],
            directory: (cert as NSString).deletingLastPathComponent)
        return (resolved.tokens, resolved.banner)
    }

    private func printBanner(
        relay: Relay, addresses: Relay.Addresses, loaded: RelayIdentity.Loaded, tokenNote: String, domain: String?
    ) {
        let host = relay.advertisedHost
        let scheme = relay.configuration.publicScheme
        Terminal.out("pinhole relay")
        if let domain {
            Terminal.out(
                "  public   \(scheme)://NAME.\(domain):\(addresses.publicPort)  (point *.\(domain) at this machine)")
        } else if let range = try? portRange() {
            Terminal.out(
                "  public   \(scheme)://\(host):\(range.lowerBound)-\(range.upperBound)  (a port per tunnel; shared port \(addresses.publicPort))"
            )
        }
        Terminal.out("  agents   \(bind):\(addresses.agentPort)  (TLS, ALPN \(TunnelProtocol.applicationProtocol))")
        Terminal.out("  cert     \(cert)\(loaded.generated ? "  (generated now)" : "")")
        Terminal.out("  pin      \(loaded.identity.fingerprint)")
        Terminal.out("")
        Terminal.out("On your laptop, run:")
        Terminal.out(
            "  PINHOLE_TOKEN=\(tokenNote) ./agent 3000 --relay \(host):\(addresses.agentPort) --pin \(loaded.identity.fingerprint)"
        )
        Terminal.out("")
    }
}
