import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeIstio
import PinholeTLS

/// `agent`: run beside the IDE.
public struct AgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "Send a cluster's requests to the app under your debugger.",
        usage: "agent [target] [--relay HOST:PORT --token T --pin sha256:HEX] [options]",
        discussion: """
            Forwards public HTTP requests to TARGET, your app (default
            http://localhost:3000), streaming bodies both ways, and prints one
            line per request.

            Where the public side is:
              embedded (default)  this agent serves it on --public-port;
                                  pods must be able to reach this machine
              --relay HOST:PORT   a Pinhole relay on a VM, reached over TLS

            The header shows the public URL and the authority (host:port) to
            put in an Istio redirect. With --service, the agent also writes the
            Istio resources that send that service's debug traffic here (see
            ISTIO below), ready for kubectl apply -f. `agent istio --help`
            prints such resources without starting a tunnel.

            Examples:
              agent                      embedded, to http://localhost:3000
              agent 8081 --service checkout --namespace shop
              agent --relay relay.example.com:4443 --token "$PINHOLE_TOKEN" \\
                    --pin sha256:...
              agent istio --service checkout --authority dev.example.com:8080
            """,
        version: PinholeVersion.current
    )

    @Argument(
        help: ArgumentHelp(
            "Your app: PORT, HOST:PORT, http://HOST:PORT, or h2c://HOST:PORT for HTTP/2 (gRPC).", valueName: "target"))
    var target = "http://localhost:3000"

    @Option(help: ArgumentHelp("Dial this relay instead of embedding one.", valueName: "host:port"))
    var relay: String?

    @Option(help: ArgumentHelp("The relay's token (or PINHOLE_TOKEN).", valueName: "token"))
    var token: String?

    @Option(
        help: ArgumentHelp(
            "Trust exactly the relay certificate with this fingerprint, as the relay printed it.",
            valueName: "sha256:hex"))
    var pin: String?

    @Option(help: ArgumentHelp("Trust the CAs in this PEM file instead of the system store.", valueName: "file"))
    var ca: String?

    @Option(
        help: ArgumentHelp(
            "Tunnel name (a DNS label). Default: stable for this user, machine and target.", valueName: "name"))
    var name: String?

    @Option(help: "Embedded relay: address to listen on.")
    var bind = "0.0.0.0"

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "Embedded relay: serve only clients in these address blocks (CIDR, or single addresses); others get 403."
                + " Default: loopback and private networks (127.0.0.0/8 ::1 10.0.0.0/8 172.16.0.0/12"
                + " 192.168.0.0/16 fc00::/7 fe80::/10). 0.0.0.0/0 ::/0 lets everyone in.",
            valueName: "cidr"))
    var allow: [String] = []

    @Option(help: "Embedded relay: port for public HTTP.")
    var publicPort = 8080

    @Option(help: ArgumentHelp("Embedded relay: this machine's name or IP as the cluster sees it.", valueName: "host"))
    var publicHost: String?

    @Option(
        help: ArgumentHelp(
            "Embedded relay: serve the public port over TLS with this certificate chain (PEM), offering ALPN h2 and "
                + "http/1.1.",
            valueName: "file"))
    var publicCert: String?

    @Option(help: ArgumentHelp("Embedded relay: the private key (PEM) for --public-cert.", valueName: "file"))
    var publicKey: String?

    @Option(
        help: ArgumentHelp(
            "Embedded relay: close a public connection that has carried no request for this many seconds;"
                + " 0 = never (default: 3900, longer than the hour Envoy keeps idle connections).",
            valueName: "seconds"))
    var idleTimeout: Int?

    @Option(help: ArgumentHelp("Seconds between keepalive PINGs to the relay.", valueName: "seconds"))
    var keepalive = 15

    @Option(
        help: ArgumentHelp(
            "Give up on a request after this many seconds (default: never, so breakpoints can take their time).",
            valueName: "seconds"))
    var requestTimeout: Int?

    @Option(help: "Output: text (a header, then a line per request) or json (one object per line).")
    var logFormat = "text"

    @Flag(help: "Print no line per request.")
    var quiet = false

    @Flag(
        inversion: .prefixedNo,
        help: "Add x-pinhole-tunnel: NAME to each response of your app, so callers can see who answered.")
    var tunnelHeader = true

    @Option(
        help: ArgumentHelp(
            "Serve the request inspector (a page and a JSON API: see, replay, edit and replay requests) here;"
                + " off turns it off. A taken port moves it to the next free one.",
            valueName: "addr|off"))
    var inspect = InspectorOption.defaultValue

    @OptionGroup(title: "Istio")
    var istio: IstioOptions

    @OptionGroup(title: "Embedded relay limits")
    var limits: EmbeddedLimitOptions

    public init() {}

    public func validate() throws {
        let address = try targetAddress()
        let written = try? TargetAddress(parsing: target)
        if let appProtocol = istio.appProtocol, let written, written.appProtocol != appProtocol,
            target.contains("://")
        {
            throw ValidationError(
                "--app-protocol \(appProtocol.rawValue) contradicts the target \(target); give one or the other")
        }
        try istioOptions(for: address).validate()
        guard AgentOutput.Format(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format takes text or json")
        }
        if relay == nil {
            for (flag, value) in [("--token", token), ("--pin", pin), ("--ca", ca), ("--name", name)] where value != nil
            {
                throw ValidationError("\(flag) is for --relay; without it the agent embeds the relay")
            }
        } else {
            if idleTimeout != nil {
                throw ValidationError("--idle-timeout is for the embedded relay; with --relay, give it to the relay")
            }
            if publicCert != nil || publicKey != nil {
                throw ValidationError(
                    "--public-cert and --public-key are for the embedded relay; with --relay, give the relay --public-tls"
                )
            }
            _ = try relayEndpoint()
            if pin != nil && ca != nil { throw ValidationError("--pin and --ca are alternatives; give one") }
            guard let token = resolvedToken else {
                throw ValidationError("--relay needs --token (or PINHOLE_TOKEN): the relay printed one")
            }
            if let problem = TokenStrength.problem(token, from: self.token == nil ? "PINHOLE_TOKEN" : "--token") {
                throw ValidationError(problem)
            }
            if let name, let problem = DNS1123.labelViolation(name) {
                throw ValidationError("--name \(name): \(problem)")
            }
            if let pin {
                do { _ = try CertificateFingerprint(parsing: pin) } catch { throw ValidationError("--pin: \(error)") }
            }
        }
        if relay != nil, !allow.isEmpty {
            throw ValidationError("--allow is for the embedded relay; with --relay, the relay serves the public side")
        }
        if relay != nil, let flag = limits.given.first {
            throw ValidationError(
                "\(flag) is for the embedded relay; with --relay, the relay's own \(flag) sets it")
        }
        _ = try allowList()
        if (publicCert == nil) != (publicKey == nil) {
            throw ValidationError("--public-cert and --public-key go together; give both")
        }
        _ = try InspectorOption.parse(inspect)
        if keepalive < 1 { throw ValidationError("--keepalive must be at least 1 second") }
        if let idleTimeout, idleTimeout < 0 {
            throw ValidationError("--idle-timeout must be 0 (never) or a number of seconds")
        }
    }

    /// The target, with `--app-protocol` applied.
    private func targetAddress() throws -> TargetAddress {
        var address: TargetAddress
        do {
            address = try TargetAddress(parsing: target)
        } catch {
            throw ValidationError(error.description)
        }
        if let appProtocol = istio.appProtocol { address.appProtocol = appProtocol }
        return address
    }

    /// The Istio flags, knowing the app's protocol from the target too (`h2c://`).
    private func istioOptions(for address: TargetAddress) -> IstioOptions {
        var options = istio
        options.appProtocol = address.appProtocol
        return options
    }

    /// `--allow`, or loopback and private networks.
    private func allowList() throws -> ClientAllowList {
        guard !allow.isEmpty else { return .loopbackAndPrivate }
        do {
            return try ClientAllowList(parsing: allow)
        } catch {
            throw ValidationError("--allow \(error)")
        }
    }

    private var resolvedToken: String? { token ?? ProcessInfo.processInfo.environment["PINHOLE_TOKEN"] }

    private func relayEndpoint() throws -> (host: String, port: Int) {
        guard let relay else { throw ValidationError("no --relay") }
        let address = try? TargetAddress(parsing: relay)
        guard let address, relay.contains(":") else {
            throw ValidationError("--relay takes HOST:PORT, such as relay.example.com:4443")
        }
        return (address.host, address.port)
    }

    public func run() async throws {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .warning
            return handler
        }
        let targetAddress = try targetAddress()
        var configuration = AgentConfiguration(target: targetAddress, mode: try mode(target: targetAddress))
        configuration.keepaliveInterval = .seconds(Int64(keepalive))
        configuration.requestTimeout = requestTimeout.map { .seconds(Int64($0)) }
        configuration.marksResponses = tunnelHeader
        if let idleTimeout { configuration.idleTimeout = idleTimeout == 0 ? nil : .seconds(Int64(idleTimeout)) }
        if let publicCert, let publicKey {
            do {
                configuration.publicTLS = try TLSIdentity.load(certificatePath: publicCert, keyPath: publicKey)
            } catch {
                Terminal.error("agent: --public-cert/--public-key: \(error.description)")
                throw ExitCode.failure
            }
        }
        configuration.reportsRequests = !quiet
        configuration.allow = try allowList()
        if relay == nil, let warning = limits.apply(to: &configuration) { Terminal.error("agent: warning: \(warning)") }

        let format = AgentOutput.Format(rawValue: logFormat) ?? .text
        let inspectorOption = try InspectorOption.parse(inspect)
        let inspection = await InspectorOption.start(inspectorOption) {
            AgentOutput.deadlinePassed($0, format: format)
        }
        // A moved inspector, or one that could not start, is said in its header line, so the
        // header stays the first thing printed (editors' background tasks wait for it).
        let output = AgentOutput(
            format: format, quiet: quiet, target: targetAddress.description,
            istio: IstioFiles(options: istioOptions(for: targetAddress)), inspector: inspection.server?.url,
            inspectorMoved: inspection.server.map { $0.portTaken.map { "port \($0) was taken" } } ?? inspection.note,
            allowed: relay == nil ? configuration.allow : nil)
        for warning in istioOptions(for: targetAddress).warnings { Terminal.error("agent: warning: \(warning)") }
        let agent = Agent(
            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "pinhole.agent"), wrapTarget: { inspection.inspector?.capture($0) ?? $0 },
            events: { output.handle($0) })
        let abandoned: Int?
        do {
            abandoned = try await runUntilInterrupted {
                try await agent.run()
            } stopping: {
                await agent.abandonRequests()
            }
        } catch let error as AgentError {
            output.failed(error)
            Terminal.error("agent: \(error)")
            throw ExitCode.failure
        }
        await inspection.server?.stop()
        output.stopped(abandoned: abandoned ?? 0)
    }

    private func mode(target: TargetAddress) throws -> AgentConfiguration.Mode {
        guard relay != nil else { return .embedded(bindHost: bind, publicPort: publicPort, publicHost: publicHost) }
        let (host, port) = try relayEndpoint()
        let trust: TLSTrust
        if let pin {
            trust = .pinned(try CertificateFingerprint(parsing: pin))
        } else if let ca {
            trust = .certificateAuthorities(path: ca)
        } else {
            trust = .systemDefault
        }
        var aliases: [String] = []
        if let service = istio.service {
            aliases.append(try ServiceAlias(service: service, namespace: istio.namespace).description)
        }
        return .relay(
            .init(
                host: host, port: port, token: resolvedToken ?? "", trust: trust,
                name: name ?? AgentConfiguration.defaultName(target: target), aliases: aliases,
                service: try istio.serviceShare()))
    }
}
