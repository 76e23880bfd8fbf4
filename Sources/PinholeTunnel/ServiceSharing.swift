import NIOHTTP1

// Several developers, one service (docs/PROTOCOL.md, "Sharing a service"): each agent on
// a Kubernetes Service declares how it takes that service's traffic (`ServiceShare`, in
// its hello), and the relay tells every agent on the service who shares it
// (`ServiceMembers`, on a control stream), so each renders the same VirtualService.

/// A request header condition, as Istio's `StringMatch` on one header: what a developer
/// takes of a shared service's traffic.
public struct HeaderCondition: Codable, Sendable, Hashable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        case exact, prefix, regex
    }

    /// Lowercase.
    public var name: String
    public var kind: Kind
    public var value: String

    public init(name: String, kind: Kind, value: String) {
        self.name = name.lowercased()
        self.kind = kind
        self.value = value
    }

    public var description: String {
        switch kind {
        case .exact: return name + "=" + value
        case .prefix: return name + "^=" + value
        case .regex: return name + "~" + value
        }
    }

    /// Whether a request with `headers` satisfies it, the way Envoy evaluates a header
    /// match: several fields of the name are joined with ",", and a regex must match the
    /// whole value. Swift's regex engine stands in for RE2 (agents refuse what RE2 lacks).
    public func matches(_ headers: HTTPHeaders) -> Bool {
        let values = headers[name]
        guard !values.isEmpty else { return false }
        let value = values.joined(separator: ",")
        switch kind {
        case .exact:
            return value == self.value
        case .prefix:
            return value.hasPrefix(self.value)
        case .regex:
            guard let regex = try? Regex(self.value) else { return false }
            return (try? regex.wholeMatch(in: value)) != nil
        }
    }
}

/// How one agent takes a shared service's traffic, sent in its hello. The relay reads
/// `service`, `namespace` and `match`; it passes the rest on to the other agents, which
/// render this developer's rule from it.
public struct ServiceShare: Codable, Sendable, Equatable {
    /// The Kubernetes Service and its namespace.
    public var service: String
    public var namespace: String
    /// `redirect`, `route` or `mirror`.
    public var mode: String
    public var match: HeaderCondition
    public var redirectCode: Int?
    public var mirrorPercent: Double?
    /// The tunnel rule's timeout (an Istio duration), if any, and its retries.
    public var timeout: String?
    public var retries: Int?

    public init(
        service: String, namespace: String, mode: String, match: HeaderCondition, redirectCode: Int? = nil,
        mirrorPercent: Double? = nil, timeout: String? = nil, retries: Int? = nil
    ) {
        self.service = service
        self.namespace = namespace
        self.mode = mode
        self.match = match
        self.redirectCode = redirectCode
        self.mirrorPercent = mirrorPercent
        self.timeout = timeout
        self.retries = retries
    }

    /// `service.namespace`, the key developers share.
    public var serviceKey: String { service + "." + namespace }
}

/// The developers on one service right now, as the relay announces it to each of them.
public struct ServiceMembers: Codable, Sendable, Equatable {
    public struct Member: Codable, Sendable, Equatable {
        public var tunnel: RelayAnswer.Tunnel
        public var share: ServiceShare

        public init(tunnel: RelayAnswer.Tunnel, share: ServiceShare) {
            self.tunnel = tunnel
            self.share = share
        }
    }

    /// Grows with every announcement the relay makes: an agent ignores one older than
    /// the last it applied (control streams may finish out of order).
    public var revision: UInt64
    public var service: String
    public var namespace: String
    /// Ordered by tunnel name, so every agent renders its rules in the same order.
    public var members: [Member]

    public init(revision: UInt64, service: String, namespace: String, members: [Member]) {
        self.revision = revision
        self.service = service
        self.namespace = namespace
        self.members = members.sorted { $0.tunnel.name < $1.tunnel.name }
    }
}

/// The control stream: the relay opens a stream whose `:scheme` is `pinhole`, which no
/// public request can carry (the relay writes `:scheme` itself), with a JSON body.
public enum TunnelControl {
    public static let scheme = "pinhole"
    /// `PUT /service-members`, body `ServiceMembers`; the agent answers 204.
    public static let membersPath = "/service-members"
}
