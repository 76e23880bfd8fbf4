import Yams

/// Turns an `IstioPlan` into YAML that `kubectl apply -f` accepts.
///
/// What each mode writes (S = service, NS = namespace):
/// - redirect: VirtualService S with rule `pinhole-debug` (header match → `redirect` to the
///   tunnel) and rule `default` (route to S).
/// - route: ServiceEntry `S-pinhole` for host `S.pinhole` (the tunnel), then VirtualService S
///   with rule `pinhole-debug` (header match → route to `S.pinhole`, authority rewritten to the
///   tunnel's so the relay can route it) and rule `default`.
/// - mirror: the same ServiceEntry, then VirtualService S with one rule `pinhole-mirror` that
///   routes to S and mirrors `mirrorPercentage` of the requests to `S.pinhole`.
/// - For an https tunnel, mirror and route also get DestinationRule `S-pinhole` with TLS mode
///   SIMPLE: without it the sidecar would send plain HTTP to the relay's TLS port, because a
///   ServiceEntry's protocol only describes the port, it does not make the sidecar open TLS.
/// - none: nothing to render; `render` throws `IstioError.nothingToRender` rather than
///   returning an empty document that `kubectl apply` would reject with a vaguer message.
///
/// Decisions that hold for every mode:
/// - `hosts` is the short name S only. Istio expands it with the VirtualService's namespace and
///   the cluster's real domain; adding `S.NS.svc.cluster.local` would name the same host twice
///   and be wrong on clusters whose domain is not `cluster.local`.
/// - The ServiceEntry and DestinationRule come before the VirtualService, so that applying
///   the file in order never routes to a host the mesh does not know yet.
/// - The redirect always names its scheme and code: Istio defaults to the request's scheme
///   (taken from x-forwarded-proto, which a client may carry over) and to 301, which browsers
///   cache long after the session ends.
/// - The rules that send traffic to the tunnel (route's, mirror's) say `retries: {attempts: 0}`
///   and set no timeout (see `DebugRulePolicy`), so a request held at a breakpoint is neither
///   cut nor sent twice.
/// - No `#` header comment: Yams cannot emit comments, and the YAML is never assembled as text.
public enum IstioRenderer {
    /// The resources for `plan`, as one multi-document YAML stream.
    public static func render(_ plan: IstioPlan) throws(IstioError) -> String {
        try serialize(resources(for: plan))
    }

    /// The VirtualService S with only the plain route to S, which undoes `render` when applied.
    /// The ServiceEntry and DestinationRule stay behind (they are inert once nothing routes to
    /// them); delete them with `kubectl delete serviceentry,destinationrule -n NS
    /// -l app.kubernetes.io/managed-by=pinhole`.
    public static func renderRestore(_ plan: IstioPlan) throws(IstioError) -> String {
        try renderRestore(
            service: plan.service,
            namespace: plan.namespace,
            servicePort: plan.servicePort,
            apiVersion: plan.apiVersion,
            ownership: plan.ownership
        )
    }

    /// Like `renderRestore(_:)`, for when there is no tunnel to build a plan with.
    public static func renderRestore(
        service: String,
        namespace: String = IstioPlan.defaultNamespace,
        servicePort: Int = IstioPlan.defaultServicePort,
        apiVersion: IstioAPIVersion = .v1,
        ownership: ResourceOwnership? = nil
    ) throws(IstioError) -> String {
        try IstioPlan.checkService(service)
        try IstioPlan.checkNamespace(namespace)
        try IstioPlan.checkServicePort(servicePort)
        let spec = VirtualServiceSpec(
            hosts: [service],
            http: [defaultRoute(service: service, port: servicePort)]
        )
        return try serialize([
            IstioResource(
                apiVersion: apiVersion,
                kind: .virtualService,
                name: service,
                namespace: namespace,
                spec: spec,
                annotations: ownership?.annotations ?? []
            )
        ])
    }

    static func resources(for plan: IstioPlan) throws(IstioError) -> [IstioResource] {
        switch plan.mode {
        case .none:
            throw .nothingToRender
        case .redirect:
            return [virtualService(plan, rules: [redirectRule(plan), defaultRoute(plan)])]
        case .route:
            return tunnelService(plan) + [virtualService(plan, rules: [routeRule(plan), defaultRoute(plan)])]
        case .mirror:
            return tunnelService(plan) + [virtualService(plan, rules: [mirrorRule(plan)])]
        }
    }

    static func serialize(_ resources: [IstioResource]) throws(IstioError) -> String {
        do {
            // width -1: never fold long values (regexes, hosts) across lines.
            return try Yams.serialize(nodes: resources.map(\.yamlNode), width: -1)
        } catch {
            throw .encodingFailed(reason: String(describing: error))
        }
    }

    // MARK: Rules

    private static let debugRuleName = "pinhole-debug"
    private static let mirrorRuleName = "pinhole-mirror"
    private static let defaultRuleName = "default"

    /// The rule that sends `plan`'s traffic to the tunnel; nil for mode none.
    static func tunnelRule(_ plan: IstioPlan) -> HTTPRoute? {
        switch plan.mode {
        case .redirect: return redirectRule(plan)
        case .route: return routeRule(plan)
        case .mirror: return mirrorRule(plan)
        case .none: return nil
        }
    }

    private static func redirectRule(_ plan: IstioPlan) -> HTTPRoute {
        let tunnel = plan.tunnel
        return HTTPRoute(
            name: debugRuleName,
            match: [HTTPMatchRequest(header: plan.headerMatch)],
            redirect: HTTPRedirect(
                authority: tunnel.bracketedHost,
                // Omitted means the scheme's default port; Istio leaves Envoy's port_redirect unset.
                port: tunnel.usesDefaultPort ? nil : tunnel.port,
                scheme: tunnel.scheme.rawValue,
                redirectCode: plan.redirectCode
            )
        )
    }

    private static func routeRule(_ plan: IstioPlan) -> HTTPRoute {
        HTTPRoute(
            name: debugRuleName,
            match: [HTTPMatchRequest(header: plan.headerMatch)],
            rewrite: HTTPRewrite(authority: plan.tunnel.authority),
            route: [
                HTTPRouteDestination(destination: Destination(host: plan.tunnelServiceHost, port: plan.tunnel.port))
            ],
            timeout: plan.debugRules.timeout,
            retries: HTTPRetry(attempts: plan.debugRules.retries)
        )
    }

    private static func mirrorRule(_ plan: IstioPlan) -> HTTPRoute {
        HTTPRoute(
            name: mirrorRuleName,
            route: [HTTPRouteDestination(destination: Destination(host: plan.service, port: plan.servicePort))],
            mirror: Destination(host: plan.tunnelServiceHost, port: plan.tunnel.port),
            mirrorPercentage: Percent(value: plan.mirrorPercent),
            timeout: plan.debugRules.timeout,
            retries: HTTPRetry(attempts: plan.debugRules.retries)
        )
    }

    static func defaultRoute(_ plan: IstioPlan) -> HTTPRoute {
        defaultRoute(service: plan.service, port: plan.servicePort)
    }

    private static func defaultRoute(service: String, port: Int) -> HTTPRoute {
        HTTPRoute(
            name: defaultRuleName,
            route: [HTTPRouteDestination(destination: Destination(host: service, port: port))]
        )
    }

    // MARK: Resources

    static func virtualService(_ plan: IstioPlan, rules: [HTTPRoute]) -> IstioResource {
        IstioResource(
            apiVersion: plan.apiVersion,
            kind: .virtualService,
            name: plan.service,
            namespace: plan.namespace,
            spec: VirtualServiceSpec(hosts: [plan.service], http: rules),
            annotations: plan.ownership?.annotations ?? []
        )
    }

    /// The tunnel's ServiceEntry port. Plain HTTP is named by the scheme, as before. An
    /// HTTP/2 or gRPC service's port says so (`GRPC`, `HTTP2`, named `grpc`/`http2`), so
    /// the sidecar speaks HTTP/2 to the relay; over https, the DestinationRule adds the TLS.
    private static func tunnelPort(_ plan: IstioPlan) -> ServiceEntrySpec.Port {
        let tunnel = plan.tunnel
        switch plan.serviceProtocol {
        case .http:
            let https = tunnel.scheme == .https
            return .init(number: tunnel.port, name: tunnel.scheme.rawValue, protocol: https ? "HTTPS" : "HTTP")
        case .http2, .grpc:
            let name = plan.serviceProtocol.rawValue + (tunnel.scheme == .https ? "-tls" : "")
            return .init(number: tunnel.port, name: name, protocol: plan.serviceProtocol.portProtocol)
        }
    }

    /// The ServiceEntry that makes the tunnel a mesh host, plus TLS origination for https.
    static func tunnelService(_ plan: IstioPlan) -> [IstioResource] {
        let tunnel = plan.tunnel
        let https = tunnel.scheme == .https
        let entry = ServiceEntrySpec(
            hosts: [plan.tunnelServiceHost],
            location: "MESH_EXTERNAL",
            ports: [tunnelPort(plan)],
            // STATIC requires IP endpoints; DNS resolves a name endpoint when Envoy connects.
            resolution: tunnel.isIPAddress ? "STATIC" : "DNS",
            endpoints: [.init(address: tunnel.host)]
        )
        var resources = [
            IstioResource(
                apiVersion: plan.apiVersion,
                kind: .serviceEntry,
                name: plan.tunnelResourceName,
                namespace: plan.namespace,
                spec: entry,
                annotations: plan.ownership?.annotations ?? []
            )
        ]
        if https {
            // SNI must be the tunnel's name: left unset, Envoy would send the request's Host,
            // which for mirrored traffic is `S-shadow`. IP addresses are not sent as SNI.
            let rule = DestinationRuleSpec(host: plan.tunnelServiceHost, sni: tunnel.isIPAddress ? nil : tunnel.host)
            resources.append(
                IstioResource(
                    apiVersion: plan.apiVersion,
                    kind: .destinationRule,
                    name: plan.tunnelResourceName,
                    namespace: plan.namespace,
                    spec: rule,
                    annotations: plan.ownership?.annotations ?? []
                )
            )
        }
        return resources
    }
}
