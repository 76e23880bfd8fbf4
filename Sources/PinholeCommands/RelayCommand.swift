import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PinholeCore
import PinholeIstio
import PinholeRelay
import PinholeTLS
import PinholeTunnel

/// `relay`: run on a VM the cluster can reach.
public struct RelayCommand: AsyncParsableCommand {
    private static let forgetAfter = RelayConfiguration.describe(RelayConfiguration.defaultForgetAfter)

    // Help lines are kept under 80 columns by hand: ArgumentParser re-wraps a longer
    // line wherever it reaches the edge, which broke sentences and commands apart.
    public static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Carry public HTTP requests to Pinhole agents over TLS.",
        usage: "relay (--domain D | --tunnel-ports A-B) [--token T] [options]",
        discussion: """
            Run this on a machine the cluster (and browsers) can reach. Agents on
            developers' laptops dial --agent-port over TLS; public requests arrive
            on --public-port and go to the agent whose tunnel they name:

              --domain D          tunnel NAME is http://NAME.D:PUBLIC-PORT;
                                  point *.D at this machine
              --tunnel-ports A-B  each tunnel gets a port of its own (default:
                                  the 100 ports after --public-port)

            A tunnel's name, aliases and port belong to the token that registered
            them, across restarts (kept in registry.json beside --cert), until unused
            for --forget-after (\(forgetAfter)): the agent comes back at the same
            address, and no other token gets them.

            On first start without --cert/--key the relay creates a self-signed
            certificate in certs/ and prints its sha256 fingerprint and the
            exact agent command line. Open the public port(s) and the agent
            port in the VM's firewall.

            Examples:
              relay --domain tunnels.example.com --public-port 80 --token "$TOKEN"
              relay --public-host 203.0.113.7 --tunnel-ports 20000-20099
            """,
        version: PinholeVersion.current
    )

    @Option(help: "Address to listen on.")
    var bind = "0.0.0.0"

    @Option(help: "Port for public HTTP (the cluster and browsers connect here).")
    var publicPort = 8080

    @Option(help: "Port agents connect to, over TLS.")
    var agentPort = 4443

    @Option(
        help: ArgumentHelp(
            "Serve tunnels as NAME.DOMAIN on the public port, routed by the Host header.", valueName: "domain"))
    var domain: String?

    @Option(
        help: ArgumentHelp(
            "This relay's name or IP as the cluster sees it; goes into tunnel addresses and the certificate.",
            valueName: "host"))
    var publicHost: String?

    @Option(
        help: ArgumentHelp(
            "Without --domain: give each tunnel its own public port from this range. A tunnel keeps its port"
                + " until unused for --forget-after.",
            valueName: "A-B"))
    var tunnelPorts: String?

    @Option(
        name: .customLong("token"),
        help: ArgumentHelp(
            "A token agents may use, 16 characters or more (repeatable). Also PINHOLE_TOKENS=tok1,tok2.",
            valueName: "token"))
    var tokens: [String] = []

    @Option(help: ArgumentHelp("A file with one token per line.", valueName: "file"))
    var tokenFile: String?

    @Option(
        help: ArgumentHelp(
            "Token checks one address (IPv6: one /64) may have in any 5 s, however many connections it opens.",
            valueName: "count"))
    var tokenChecks = 10

    @Option(help: ArgumentHelp("Certificate chain (PEM). Generated on first start when missing.", valueName: "file"))
    var cert = "certs/relay.crt"

    @Option(help: ArgumentHelp("Private key (PEM) for --cert.", valueName: "file"))
    var key = "certs/relay.key"

    @Flag(
        help: ArgumentHelp(
            "Serve the public port(s) over TLS, with ALPN h2 and http/1.1, using --cert/--key (or --public-cert/"
                + "--public-key). Without it they speak plain HTTP/1.1 and HTTP/2 (h2c)."))
    var publicTls = false

    @Option(
        help: ArgumentHelp(
            "Certificate chain (PEM) for the public port(s), when it should not be the agents' one; implies "
                + "--public-tls.",
            valueName: "file"))
    var publicCert: String?

    @Option(help: ArgumentHelp("Private key (PEM) for --public-cert.", valueName: "file"))
    var publicKey: String?

    @Option(help: ArgumentHelp("Most tunnels connected at once; more agents wait for room.", valueName: "count"))
    var maxTunnels = 1000

    @Option(help: ArgumentHelp("Most tunnels one token has connected at once; more wait for room.", valueName: "count"))
    var maxTunnelsPerToken = 32

    @Option(
        help: ArgumentHelp(
            "Most names one token owns, connected or not; a new one past it forgets the token's longest unused.",
            valueName: "count"))
    var maxNamesPerToken = 128

    @Option(help: ArgumentHelp("Most service aliases one tunnel may ask for.", valueName: "count"))
    var maxAliases = 16

    @Option(
        help: ArgumentHelp(
            "Days a tunnel's name, aliases and port stay its token's once unused; 0 = for ever.",
            valueName: "days"))
    var forgetAfter = Int(RelayConfiguration.defaultForgetAfter.nanoseconds / 1_000_000_000 / 86_400)

    @Option(
        help: ArgumentHelp(
            "Seconds between keepalive PINGs; a silent agent is dropped after about two.", valueName: "seconds"))
    var keepalive = 15

    @Option(
        help: ArgumentHelp(
            "Give up on a request after this many seconds (default: never, for debuggers).", valueName: "seconds"))
    var requestTimeout: Int?

    @Option(
        help: ArgumentHelp(
            "Close a public connection that has carried no request for this many seconds; 0 = never. The default"
                + " outlasts the hour Envoy keeps idle upstream connections, so sidecars never race the close.",
            valueName: "seconds"))
    var idleTimeout = Int(PublicRequestHandler.defaultIdleTimeout.nanoseconds / 1_000_000_000)

    @Option(
        help: ArgumentHelp(
            "Requests in flight from one client address (IPv6: one /64), loopback included. Keep it generous:"
                + " a cluster's sidecars may share one NAT address.", valueName: "count"))
    var maxInFlightPerAddress = InFlightLimits.Caps().perAddress

    @Option(help: ArgumentHelp("Requests in flight through one tunnel.", valueName: "count"))
    var maxInFlightPerTunnel = InFlightLimits.Caps().perTunnel

    @Option(
        help: ArgumentHelp(
            "How long a request over a cap on requests in flight waits for a place before it gets 503.",
            valueName: "seconds"))
    var inFlightWait = 5

    @Option(
        help: ArgumentHelp(
            "Cut off a client that sends none of its request body, or reads none of its answer, for this long;"
                + " 0 = never. Waits on the app (a breakpoint) never count.", valueName: "seconds"))
    var stallTimeout = Int(PublicLimits.defaultStallTimeout.nanoseconds / 1_000_000_000)

    @Option(
        help: ArgumentHelp(
            "Public connections open at once, all public ports together; more are closed at once.",
            valueName: "count"))
    var maxConnections = ConnectionLimits.Caps.publicDefault.total

    @Option(
        help: ArgumentHelp(
            "Public connections open at once from one client address (IPv6: one /64). Keep it generous: a"
                + " cluster's sidecars may share one NAT address.", valueName: "count"))
    var maxConnectionsPerAddress = ConnectionLimits.Caps.publicDefault.perAddress

    @Option(
        help: ArgumentHelp(
            "Agent connections open at once (handshakes included), counted apart from public ones.",
            valueName: "count"))
    var maxAgentConnections = ConnectionLimits.Caps.agentDefault.total

    @Option(help: ArgumentHelp("Agent connections open at once from one address.", valueName: "count"))
    var maxAgentConnectionsPerAddress = ConnectionLimits.Caps.agentDefault.perAddress

    @Option(help: ArgumentHelp("Event-loop threads (default: one per core).", valueName: "count"))
    var threads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    public init() {}

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
    private func normalisedDomain() throws -> String? {
        guard let domain else { return nil }
        let normalised = domain.lowercased().trimmingCharacters(in: CharacterSet(charactersIn: "."))
        if let problem = DNS1123.subdomainViolation(normalised) {
            throw ValidationError("--domain \(domain): \(problem)")
        }
        return normalised
    }

    private func portRange() throws -> ClosedRange<Int>? {
        guard let tunnelPorts else { return domain == nil ? (publicPort + 1)...(publicPort + 100) : nil }
        let parts = tunnelPorts.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let low = parts[0], let high = parts[1], low <= high else {
            throw ValidationError("--tunnel-ports takes a range such as 20000-20099")
        }
        guard low >= 1, high <= 65535 else { throw ValidationError("--tunnel-ports must lie within 1-65535") }
        return low...high
    }

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
