/// A Kubernetes Service the relay answers for, so that requests the mesh sends with the
/// Service's own Host header (mirrored ones) reach the right tunnel.
///
/// Only the shapes in-cluster clients actually use are recognised: `S`, `S.NS`, `S.NS.svc`
/// and `S.NS.svc.cluster.local`, with an optional `:port`. Any other dotted name is not an
/// alias, so a tunnel host such as `demo.tunnel.example.com` is never mistaken for service
/// `demo` in namespace `tunnel`; the price is that clusters with a custom domain (not
/// `cluster.local`) only match through the shorter forms. IP addresses are never aliases.
public struct ServiceAlias: Hashable, Sendable, CustomStringConvertible {
    public let service: String
    public let namespace: String

    /// The namespace of a service named without one.
    public static let defaultNamespace = "default"

    public init(service: String, namespace: String = ServiceAlias.defaultNamespace) throws(InvalidName) {
        try DNS1123.validateServiceName(service)
        try Self.validateNamespace(namespace)
        self.init(checkedService: service, namespace: namespace)
    }

    init(checkedService service: String, namespace: String) {
        self.service = service
        self.namespace = namespace
    }

    public static func validateNamespace(_ namespace: String) throws(InvalidName) {
        try DNS1123.validateLabel(namespace, kind: "namespace", example: "team-a")
    }

    /// `service.namespace`: how the agent names the alias in its hello.
    public var description: String { service + "." + namespace }

    /// Reads `description` back (`service` alone means the default namespace).
    public init(description text: String) throws(InvalidName) {
        let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
        try self.init(service: parts.first ?? "", namespace: parts.count > 1 ? parts[1] : Self.defaultNamespace)
    }

    /// True when `host` names this service, in this namespace or without a namespace.
    public func matches(host: String) -> Bool {
        matches(shapes: Self.shapes(ofHost: host))
    }

    /// `matches(host:)` for shapes computed once with `shapes(ofHost:)`: the relay checks
    /// one Host against every alias it holds, and parses it only once.
    public func matches(shapes: [(service: String, namespace: String?)]) -> Bool {
        shapes.contains { $0.service == service && ($0.namespace == nil || $0.namespace == namespace) }
    }

    /// The service (and namespace) `host` may name: as written, and without a `-shadow`
    /// suffix. Empty when it names none (an IP address, a name of another shape).
    ///
    /// Envoy appends `-shadow` to the whole host of a mirrored request (`S-shadow:3000`,
    /// `S.NS.svc.cluster.local-shadow`), which Istio ≤ 1.27 always lets it do, and 1.28+
    /// only with DISABLE_SHADOW_HOST_SUFFIX=false (as set by the pre-1.28 compatibility
    /// profiles). The host as written is kept too, so a Service really named `x-shadow`
    /// still matches its own Host header.
    public static func shapes(ofHost host: String) -> [(service: String, namespace: String?)] {
        guard let name = hostName(host) else {
            return []
        }
        var shapes: [(service: String, namespace: String?)] = []
        if let asWritten = shape(name) { shapes.append(asWritten) }
        let unshadowed = withoutShadowSuffix(name)
        if unshadowed != name, let stripped = shape(unshadowed) { shapes.append(stripped) }
        return shapes
    }

    private static let shadowSuffix = "-shadow"

    /// The lowercased host without its port or a trailing root dot; nil for IP literals and
    /// malformed ports.
    private static func hostName(_ host: String) -> String? {
        let lowered = host.lowercased()
        if lowered.hasPrefix("[") {
            return nil
        }
        var name = Substring(lowered)
        if let colon = name.firstIndex(of: ":") {
            let port = name[name.index(after: colon)...]
            // A second colon means a bare IPv6 address.
            guard !port.isEmpty, port.count <= 5, port.allSatisfy({ ("0"..."9").contains($0) }) else {
                return nil
            }
            name = name[..<colon]
        }
        if name.hasSuffix(".") {
            name = name.dropLast()
        }
        guard !name.isEmpty, !IPAddressLiteral.isValid(String(name)) else {
            return nil
        }
        return String(name)
    }

    private static func withoutShadowSuffix(_ name: String) -> String {
        guard name.hasSuffix(shadowSuffix), name.count > shadowSuffix.count else {
            return name
        }
        return String(name.dropLast(shadowSuffix.count))
    }

    private static func shape(_ name: String) -> (service: String, namespace: String?)? {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        let namespace: String?
        switch labels.count {
        case 1:
            namespace = nil
        case 2:
            namespace = labels[1]
        case 3 where labels[2] == "svc":
            namespace = labels[1]
        case 5 where labels[2...] == ["svc", "cluster", "local"]:
            namespace = labels[1]
        default:
            return nil
        }
        guard DNS1123.serviceNameViolation(labels[0]) == nil else {
            return nil
        }
        if let namespace, DNS1123.labelViolation(namespace) != nil {
            return nil
        }
        return (labels[0], namespace)
    }
}
