import ArgumentParser
import PinholeCore
import PinholeIstio

extension IstioMode: ExpressibleByArgument {
    // Shown beside each value in --help, for someone who has not used Istio routing before.
    public var defaultValueDescription: String {
        switch self {
        case .redirect:
            return "Callers that send the debug header get an HTTP redirect to the tunnel and must follow it "
                + "themselves (browsers and curl -L do)."
        case .mirror:
            return "A copy of each request (or --mirror-percent of them) goes to your laptop; callers still get "
                + "the cluster's answer and never see yours."
        case .route:
            return "The caller's sidecar sends requests with the debug header to the tunnel itself, so any client "
                + "works and gets your laptop's answer."
        case .none:
            return "Write no Istio resources (the default without --service)."
        }
    }
}

extension IstioAPIVersion: ExpressibleByArgument {}
extension ServiceProtocol: ExpressibleByArgument {}
extension TargetAddress.AppProtocol: ExpressibleByArgument {}
extension TunnelEndpoint.Scheme: ExpressibleByArgument {}

/// The flags that decide which Istio resources the agent writes. Shared by the agent
/// command (which writes them to a file once the tunnel is up) and `agent istio`.
public struct IstioOptions: ParsableArguments {
    @Option(
        name: .customLong("istio"),
        help: ArgumentHelp(
            "How the mesh sends the service's traffic to your laptop. Default: redirect with --service, else none.",
            valueName: "mode"
        )
    )
    public var mode: IstioMode?

    @Option(
        help: ArgumentHelp(
            "How the agent talks to your app: http1 (HTTP/1.1, the default) or h2c (HTTP/2 without TLS, for gRPC "
                + "servers; the same as a TARGET written h2c://HOST:PORT). With h2c the mesh keeps HTTP/2 to the "
                + "tunnel, and --istio defaults to route.",
            valueName: "protocol"))
    public var appProtocol: TargetAddress.AppProtocol?

    @Option(
        help: ArgumentHelp(
            "What the service speaks in the mesh: grpc, http2 or http. Default: http2 with --app-protocol h2c, else "
                + "http. grpc and http2 keep HTTP/2 from the caller's sidecar to the tunnel, and make route the "
                + "default --istio (gRPC clients do not follow redirects).",
            valueName: "protocol"))
    public var serviceProtocol: ServiceProtocol?

    @Option(help: ArgumentHelp("The Kubernetes Service to debug (its metadata.name).", valueName: "name"))
    public var service: String?

    @Option(help: ArgumentHelp("The namespace of that Service.", valueName: "namespace"))
    public var namespace: String = IstioPlan.defaultNamespace

    @Option(help: ArgumentHelp("The Service port that all other traffic keeps going to.", valueName: "port"))
    public var servicePort: Int = IstioPlan.defaultServicePort

    @Option(
        help: ArgumentHelp(
            "Which requests go to your laptop (redirect, route; mirror when several developers share the service): "
                + "NAME=VALUE, NAME^=PREFIX or NAME~REGEX. "
                + "Default: x-user=debug, so `curl -H 'x-user: debug' …` reaches you and nothing else does.",
            valueName: "match"
        )
    )
    public var matchHeader: String?

    @Option(
        help: ArgumentHelp(
            "Match a member of the W3C baggage header instead of --match-header: KEY=VALUE, e.g. user=alice. "
                + "Every app between the caller and the service must propagate baggage.",
            valueName: "key=value"
        )
    )
    public var matchBaggage: String?

    @Option(
        help: ArgumentHelp(
            "HTTP status of the redirect (redirect): 307 (default; keeps method and body), 308, 302, 303 or 301.",
            valueName: "code"
        )
    )
    public var redirectCode: Int?

    @Option(
        help: ArgumentHelp(
            "Percentage of requests to copy (mirror): above 0, up to 100 (default).",
            valueName: "percent"
        )
    )
    public var mirrorPercent: Double?

    @Option(
        help: ArgumentHelp(
            "Timeout of the rules that send traffic to the tunnel (route, mirror), e.g. 5m. "
                + "Default: none, so a request can wait at a breakpoint.",
            valueName: "duration"
        )
    )
    public var debugTimeout: String?

    @Option(
        help: ArgumentHelp(
            "Retries of the rules that send traffic to the tunnel (route, mirror). Default: 0; "
                + "Istio retries twice otherwise, and a request held at a breakpoint could be sent again.",
            valueName: "count"
        )
    )
    public var debugRetries: Int?

    @Option(
        name: .customLong("istio-api"),
        help: ArgumentHelp(
            "The networking.istio.io version to write; v1 needs Istio 1.22 or later.",
            valueName: "version"
        )
    )
    public var apiVersion: IstioAPIVersion = .v1

    @Option(
        name: .customLong("istio-out"),
        help: ArgumentHelp(
            "File to write the resources to. Default: pinhole-SERVICE.yaml (`agent istio` prints to stdout).",
            valueName: "file"
        )
    )
    public var outputPath: String?

    public init() {}

    /// `--service-protocol`, or its default: http2 for an h2c app, http otherwise.
    public var resolvedServiceProtocol: ServiceProtocol {
        serviceProtocol ?? (appProtocol == .h2c ? .http2 : .http)
    }

    /// `--istio`, or its default: none without a service; route when the mesh speaks
    /// HTTP/2 (gRPC clients do not follow redirects); redirect otherwise.
    public var resolvedMode: IstioMode {
        mode ?? (service == nil ? .none : resolvedServiceProtocol == .http ? .redirect : .route)
    }

    /// Things that work but may surprise, for the command to print.
    public var warnings: [String] {
        guard resolvedMode == .redirect, resolvedServiceProtocol == .http2 else { return [] }
        return [
            "--istio redirect with an HTTP/2 service: only clients that follow redirects reach you; "
                + "--istio route works for every client"
        ]
    }

    /// Where the agent writes the resources; nil when there are none to write.
    public var resolvedOutputPath: String? {
        guard resolvedMode != .none, let service else {
            return nil
        }
        return outputPath ?? "pinhole-\(service).yaml"
    }

    public func validate() throws {
        let mode = resolvedMode
        if let service {
            try check("--service") { () throws(IstioError) in try IstioPlan.checkService(service) }
        } else if mode != .none {
            throw ValidationError(
                "--istio \(mode.rawValue) needs --service NAME: the Kubernetes Service whose traffic should reach you"
            )
        }
        try check("--namespace") { () throws(IstioError) in try IstioPlan.checkNamespace(namespace) }
        try check("--service-port") { () throws(IstioError) in try IstioPlan.checkServicePort(servicePort) }
        if let matchHeader {
            try check("--match-header") { () throws(IstioError) in _ = try HeaderMatch(parsing: matchHeader) }
            try requireMode(
                [.redirect, .route, .mirror], for: "--match-header",
                because: "they select requests by header (mirror: once several developers share the service)")
        }
        if let matchBaggage {
            if matchHeader != nil {
                throw ValidationError("--match-header and --match-baggage are alternatives; give one")
            }
            try check("--match-baggage") { () throws(IstioError) in _ = try HeaderMatch(baggage: matchBaggage) }
            try requireMode(
                [.redirect, .route, .mirror], for: "--match-baggage",
                because: "they select requests by header (mirror: once several developers share the service)")
        }
        if let redirectCode {
            try check("--redirect-code") { () throws(IstioError) in try IstioPlan.checkRedirectCode(redirectCode) }
            try requireMode([.redirect], for: "--redirect-code", because: "only it answers with a redirect")
        }
        if let mirrorPercent {
            try check("--mirror-percent") { () throws(IstioError) in try IstioPlan.checkMirrorPercent(mirrorPercent) }
            try requireMode([.mirror], for: "--mirror-percent", because: "only it copies requests")
        }
        if mode == .redirect, resolvedServiceProtocol == .grpc {
            throw ValidationError(
                "--istio redirect cannot work with --service-protocol grpc: gRPC clients do not follow redirects; "
                    + "use --istio route (the default for gRPC) or mirror")
        }
        if let debugTimeout {
            try check("--debug-timeout") { () throws(IstioError) in try DebugRulePolicy.checkTimeout(debugTimeout) }
            try requireMode([.route, .mirror], for: "--debug-timeout", because: "only they send traffic to the tunnel")
        }
        if let debugRetries {
            try check("--debug-retries") { () throws(IstioError) in try DebugRulePolicy.checkRetries(debugRetries) }
            try requireMode([.route, .mirror], for: "--debug-retries", because: "only they send traffic to the tunnel")
        }
        if outputPath != nil, mode == .none {
            throw ValidationError("--istio-out has nothing to write with --istio none; add --service NAME")
        }
    }

    /// The plan for this tunnel, or nil for `--istio none`. Call after `validate()`.
    public func plan(tunnel: TunnelEndpoint) throws(IstioError) -> IstioPlan? {
        try planMaker()?(tunnel)
    }

    /// The same as `plan(tunnel:)`, captured as a value so it can be used later from
    /// any thread (once the tunnel's address is known). Nil for `--istio none`.
    public func planMaker() -> (@Sendable (TunnelEndpoint) throws(IstioError) -> IstioPlan)? {
        let mode = resolvedMode
        guard mode != .none, let service else { return nil }
        let (namespace, servicePort, apiVersion) = (namespace, servicePort, apiVersion)
        let (matchHeader, matchBaggage) = (matchHeader, self.matchBaggage)
        let redirectCode = redirectCode ?? IstioPlan.defaultRedirectCode
        let mirrorPercent = mirrorPercent ?? 100
        let serviceProtocol = resolvedServiceProtocol
        let (debugTimeout, debugRetries) = (debugTimeout, debugRetries ?? 0)
        return { tunnel throws(IstioError) in
            var plan = try IstioPlan(
                mode: mode, service: service, namespace: namespace, servicePort: servicePort,
                headerMatch: try Self.headerMatch(header: matchHeader, baggage: matchBaggage),
                redirectCode: redirectCode, mirrorPercent: mirrorPercent, apiVersion: apiVersion,
                serviceProtocol: serviceProtocol, tunnel: tunnel)
            plan.debugRules = try DebugRulePolicy(timeout: debugTimeout, retries: debugRetries)
            return plan
        }
    }

    /// `--match-header`, or `--match-baggage` as its regex, or the default `x-user=debug`.
    static func headerMatch(header: String?, baggage: String?) throws(IstioError) -> HeaderMatch {
        if let header { return try HeaderMatch(parsing: header) }
        if let baggage { return try HeaderMatch(baggage: baggage) }
        return .default
    }

    private func check(_ flag: String, _ body: () throws(IstioError) -> Void) throws {
        do {
            try body()
        } catch {
            throw ValidationError("\(flag): \(error)")
        }
    }

    // A flag the chosen mode ignores is almost always a misunderstanding; say so instead of
    // silently writing resources that behave differently from what was asked.
    private func requireMode(_ modes: [IstioMode], for flag: String, because reason: String) throws {
        let mode = resolvedMode
        guard modes.contains(mode) else {
            let names = modes.map { "--istio \($0.rawValue)" }.joined(separator: " and ")
            throw ValidationError(
                "\(flag) has no effect with --istio \(mode.rawValue); it applies to \(names), because \(reason)"
            )
        }
    }
}
