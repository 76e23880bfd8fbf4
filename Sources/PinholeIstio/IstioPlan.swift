import PinholeCore

/// How the mesh hands traffic for the debugged service to the tunnel.
public enum IstioMode: String, Sendable, CaseIterable {
    /// Requests carrying the debug header get a redirect to the tunnel; the client follows it.
    case redirect
    /// Every request (or a percentage) is copied to the tunnel; the cluster's answer is the one used.
    case mirror
    /// Requests carrying the debug header are proxied to the tunnel by the caller's sidecar.
    case route
    /// No Istio resources.
    case none
}

/// What the debugged service speaks inside the mesh. HTTP/2 kinds make the tunnel's
/// ServiceEntry port say so, so the caller's sidecar keeps HTTP/2 (and gRPC's trailers)
/// all the way to the relay instead of downgrading to HTTP/1.1.
public enum ServiceProtocol: String, Sendable, CaseIterable {
    case http, http2, grpc

    /// The ServiceEntry port's `protocol` for a plain-text tunnel.
    public var portProtocol: String {
        switch self {
        case .http: return "HTTP"
        case .http2: return "HTTP2"
        case .grpc: return "GRPC"
        }
    }
}

/// The `networking.istio.io` version written into `apiVersion`. The spec fields Pinhole
/// uses are identical in all three; `v1` is served from Istio 1.22 on.
public enum IstioAPIVersion: String, Sendable, CaseIterable {
    case v1, v1beta1, v1alpha3

    public var apiVersion: String { "networking.istio.io/" + rawValue }
}

/// Everything the renderer needs, checked once so rendering cannot fail on user input.
public struct IstioPlan: Sendable, Equatable {
    public static let defaultNamespace = ServiceAlias.defaultNamespace
    public static let defaultServicePort = 3000
    public static let defaultRedirectCode = 307
    /// The codes Istio translates to an Envoy redirect; anything else makes istiod drop the route.
    public static let supportedRedirectCodes = [301, 302, 303, 307, 308]
    /// Envoy mirrors in parts per million, so 0.0001 % is the smallest share it can express.
    public static let mirrorPercentResolution = 0.0001

    public let mode: IstioMode
    /// The Kubernetes Service whose traffic is diverted.
    public let service: String
    public let namespace: String
    /// The Service port that normal traffic keeps going to.
    public let servicePort: Int
    public let headerMatch: HeaderMatch
    public let redirectCode: Int
    public let mirrorPercent: Double
    public let apiVersion: IstioAPIVersion
    public let serviceProtocol: ServiceProtocol
    public let tunnel: TunnelEndpoint
    /// Timeout and retries of the rules that send traffic to the tunnel.
    public var debugRules = DebugRulePolicy.breakpointSafe
    /// Annotations saying who wrote the resources; nil writes none.
    public var ownership: ResourceOwnership?
    /// The tunnel's name when several developers share the service: their tunnels then
    /// need a ServiceEntry each.
    public var sharedTunnelName: String?

    public init(
        mode: IstioMode,
        service: String,
        namespace: String = IstioPlan.defaultNamespace,
        servicePort: Int = IstioPlan.defaultServicePort,
        headerMatch: HeaderMatch = .default,
        redirectCode: Int = IstioPlan.defaultRedirectCode,
        mirrorPercent: Double = 100,
        apiVersion: IstioAPIVersion = .v1,
        serviceProtocol: ServiceProtocol = .http,
        tunnel: TunnelEndpoint
    ) throws(IstioError) {
        if mode == .redirect, serviceProtocol == .grpc { throw .redirectWithGRPC }
        try Self.checkService(service)
        try Self.checkNamespace(namespace)
        try Self.checkServicePort(servicePort)
        try Self.checkRedirectCode(redirectCode)
        try Self.checkMirrorPercent(mirrorPercent)
        self.mode = mode
        self.service = service
        self.namespace = namespace
        self.servicePort = servicePort
        self.headerMatch = headerMatch
        self.redirectCode = redirectCode
        self.mirrorPercent = mirrorPercent
        self.apiVersion = apiVersion
        self.serviceProtocol = serviceProtocol
        self.tunnel = tunnel
    }

    // The individual checks are public so a command line can report each flag on its own,
    // before it knows the tunnel.

    public static func checkService(_ service: String) throws(IstioError) {
        do { try DNS1123.validateServiceName(service) } catch { throw IstioError(error) }
    }

    public static func checkNamespace(_ namespace: String) throws(IstioError) {
        do { try ServiceAlias.validateNamespace(namespace) } catch { throw IstioError(error) }
    }

    public static func checkServicePort(_ port: Int) throws(IstioError) {
        guard (1...65535).contains(port) else {
            throw .portOutOfRange(kind: "service port", value: port)
        }
    }

    public static func checkRedirectCode(_ code: Int) throws(IstioError) {
        guard supportedRedirectCodes.contains(code) else {
            throw .unsupportedRedirectCode(code)
        }
    }

    public static func checkMirrorPercent(_ percent: Double) throws(IstioError) {
        guard percent.isFinite, percent >= mirrorPercentResolution, percent <= 100 else {
            throw .mirrorPercentOutOfRange(percent)
        }
    }
}

extension IstioPlan {
    /// The ServiceEntry host that stands for the tunnel inside the mesh (mirror and route).
    /// It has a dot so that Istio takes it as a full name rather than expanding it with the
    /// namespace, and so that no cluster DNS answers for it by accident.
    public var tunnelServiceHost: String { (sharedTunnelName.map { $0 + "." } ?? "") + service + ".pinhole" }

    /// The name of the ServiceEntry (and, for https, DestinationRule) for the tunnel.
    public var tunnelResourceName: String { service + "-pinhole" + (sharedTunnelName.map { "-" + $0 } ?? "") }
}
