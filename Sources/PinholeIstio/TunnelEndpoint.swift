import PinholeCore

/// The tunnel's public authority: where a pod in the cluster sends a request so that it
/// reaches the relay, and through it the developer's laptop.
public struct TunnelEndpoint: Sendable, Equatable, CustomStringConvertible {
    public enum Scheme: String, Sendable, CaseIterable {
        case http, https

        public var defaultPort: Int {
            switch self {
            case .http: return 80
            case .https: return 443
            }
        }
    }

    /// A lowercase DNS name, or an IP address without brackets.
    public let host: String
    public let port: Int
    public let scheme: Scheme

    /// `port` nil means the scheme's default (80 or 443).
    public init(host: String, port: Int? = nil, scheme: Scheme = .https) throws(IstioError) {
        let port = port ?? scheme.defaultPort
        guard (1...65535).contains(port) else {
            throw .portOutOfRange(kind: "tunnel port", value: port)
        }
        self.host = try Self.checkedHost(host, input: host)
        self.port = port
        self.scheme = scheme
    }

    /// Parses `HOST`, `HOST:PORT`, `[IPv6]` or `[IPv6]:PORT`.
    public init(authority: String, scheme: Scheme = .https) throws(IstioError) {
        if authority.contains("://") {
            throw .invalidTunnel(input: authority, reason: "it is a URL; give the scheme separately (--scheme)")
        }
        if authority.contains("/") || authority.contains("?") || authority.contains("#") {
            throw .invalidTunnel(input: authority, reason: "it has a path or query, and an authority has neither")
        }
        if authority.contains("@") {
            throw .invalidTunnel(input: authority, reason: "it has user information, which Pinhole does not use")
        }
        let (host, portText) = try Self.split(authority)
        var port: Int?
        if let portText {
            guard !portText.isEmpty, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
                portText.count <= 5, let number = Int(portText)
            else {
                throw .invalidTunnel(input: authority, reason: "'\(portText)' after ':' is not a port number")
            }
            port = number
        }
        let checkedHost = try Self.checkedHost(host, input: authority)
        try self.init(host: checkedHost, port: port, scheme: scheme)
    }

    public var usesDefaultPort: Bool { port == scheme.defaultPort }

    public var isIPAddress: Bool { IPAddressLiteral.isValid(host) }

    /// `host[:port]` as it goes into a Host header or a redirect; the port only when it is not
    /// the scheme's default, IPv6 in brackets.
    public var authority: String {
        usesDefaultPort ? bracketedHost : bracketedHost + ":" + String(port)
    }

    /// The host as it goes before a port: IPv6 in brackets.
    public var bracketedHost: String { host.contains(":") ? "[" + host + "]" : host }

    public var description: String { scheme.rawValue + "://" + authority }

    private static func split(_ authority: String) throws(IstioError) -> (host: String, port: String?) {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw .invalidTunnel(input: authority, reason: "the '[' of an IPv6 address has no closing ']'")
            }
            let host = String(authority[authority.index(after: authority.startIndex)..<close])
            let rest = authority[authority.index(after: close)...]
            if rest.isEmpty {
                return (host, nil)
            }
            guard rest.hasPrefix(":") else {
                throw .invalidTunnel(input: authority, reason: "only ':PORT' may follow the ']' of an IPv6 address")
            }
            return (host, String(rest.dropFirst()))
        }
        let colons = authority.filter { $0 == ":" }.count
        if colons > 1 {
            // A bare IPv6 address; it cannot carry a port without brackets.
            return (authority, nil)
        }
        if let colon = authority.firstIndex(of: ":") {
            return (String(authority[..<colon]), String(authority[authority.index(after: colon)...]))
        }
        return (authority, nil)
    }

    private static func checkedHost(_ host: String, input: String) throws(IstioError) -> String {
        if host.isEmpty {
            throw .invalidTunnel(input: input, reason: "the host is empty")
        }
        let lowered = host.lowercased()
        if IPAddressLiteral.isValid(lowered) {
            return lowered
        }
        if lowered.contains(":") {
            throw .invalidTunnel(input: input, reason: "'\(host)' is not a valid IPv6 address")
        }
        let labels = lowered.split(separator: ".", omittingEmptySubsequences: false)
        if let last = labels.last, !last.isEmpty, last.allSatisfy(\.isNumber) {
            // Istio would hand this to DNS as a name, which no resolver answers.
            throw .invalidTunnel(input: input, reason: "'\(host)' looks like an IPv4 address but is not a valid one")
        }
        do {
            try DNS1123.validateSubdomain(lowered, kind: "tunnel host", example: "tunnel.example.com")
        } catch {
            throw IstioError(error)
        }
        return lowered
    }
}
