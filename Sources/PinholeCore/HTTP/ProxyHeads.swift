import NIOCore
import NIOHTTP1

/// A request as it crosses the proxy: what the relay parsed from the public side,
/// what travels through the tunnel, and what the agent sends to its target.
/// `headers` holds end-to-end fields only: no Host (that is `authority`) and no
/// hop-by-hop fields.
public struct ProxyRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The request target in origin form: path and query.
    public var path: String
    /// The host (and port) the client asked for.
    public var authority: String
    /// The scheme the client used to reach the public side.
    public var scheme: String
    public var headers: HTTPHeaders
    /// False when the request is known to carry no body (HTTP/1 framing says so), which
    /// lets the tunnel end the stream with its HEADERS frame.
    public var mayHaveBody: Bool
    /// The protocol a client asks to switch to (a WebSocket handshake's Upgrade). If the
    /// app agrees (101), the exchange's bodies become the two directions of the new
    /// protocol's bytes.
    public var upgrade: String?
    /// The protocol the client spoke to the public side (for the request log).
    public var clientProtocol: ClientProtocol

    public init(
        method: HTTPMethod, path: String, authority: String, scheme: String, headers: HTTPHeaders,
        mayHaveBody: Bool = true, upgrade: String? = nil, clientProtocol: ClientProtocol = .http1
    ) {
        self.method = method
        self.path = path
        self.authority = authority
        self.scheme = scheme
        self.headers = headers
        self.mayHaveBody = mayHaveBody
        self.upgrade = upgrade
        self.clientProtocol = clientProtocol
    }

    /// A gRPC call: `content-type: application/grpc` or `application/grpc+FORMAT`.
    /// (gRPC-Web, `application/grpc-web…`, is made for HTTP/1.1 and is an ordinary request.)
    public var isGRPC: Bool {
        guard let type = headers.first(name: "content-type")?.lowercased(), type.hasPrefix("application/grpc") else {
            return false
        }
        let rest = type.dropFirst("application/grpc".count)
        return rest.isEmpty || rest.hasPrefix("+") || rest.hasPrefix(";")
    }

    /// Appends X-Forwarded-For (when the client's address is known), -Proto and -Host.
    /// (The HTTP/2 public side sets the same fields while it reads the request:
    /// `init(http2:forwarding:)` in PinholeTunnel.)
    public mutating func appendForwardingFields(clientAddress: String?, scheme: String) {
        // X-Forwarded-For grows by the address the relay saw: its last element is the one
        // to trust, the ones before are what the client claimed. Proto and Host say what
        // the relay itself received, so a client's own values are replaced, not extended.
        if let clientAddress { headers.appendForwarded(ForwardingFields.forName, clientAddress) }
        headers.replaceOrAppend(name: ForwardingFields.protoName, value: scheme)
        headers.replaceOrAppend(name: ForwardingFields.hostName, value: authority)
    }

    /// The request a public client sent (its hop-by-hop fields already left out by the
    /// parser), with the X-Forwarded-* fields set.
    init(publicRequest head: PublicRequestHead, clientAddress: String?, scheme: String = "http") throws(ExchangeError) {
        var path = head.target
        var authority = head.host
        if !path.hasPrefix("/") {
            // Absolute form (a client that thinks we are a forward proxy), or '*'.
            guard let parsed = AbsoluteURI(path) else {
                throw .malformedRequest("the request target '\(head.target)' is neither a path nor an absolute URL")
            }
            path = parsed.path
            authority = authority ?? parsed.authority
        }
        guard let authority, !authority.isEmpty else {
            throw .malformedRequest("the request has no Host header")
        }
        // WebSocket handshakes are carried. Other upgrades (h2c) are ignored, as RFC 9110
        // allows: the client goes on in HTTP/1.1. So is an Upgrade on a request with a
        // body: sent on unframed, its body would reach the app as another request.
        let upgrade = head.hasBody ? nil : head.upgrade.flatMap { $0.lowercased().contains("websocket") ? $0 : nil }
        var headers = head.headers
        // "Content-Length: 0" would end the stream for nghttp2 before the new protocol's bytes.
        if upgrade != nil { headers.remove(name: "content-length") }
        self.init(
            method: head.method, path: path, authority: authority, scheme: scheme, headers: headers,
            mayHaveBody: head.hasBody || upgrade != nil, upgrade: upgrade)
        // gRPC ends every call with trailers, which only HTTP/2 carries to gRPC clients;
        // an HTTP/1.1 gRPC request is a client set up wrongly, and is told so.
        if isGRPC {
            throw .http2Required(
                "a gRPC request (content-type \(headers.first(name: "content-type") ?? "")) needs HTTP/2 end to end, "
                    + "and this one came over HTTP/1.1; connect with HTTP/2 (prior knowledge, or TLS with ALPN h2)")
        }
        appendForwardingFields(clientAddress: clientAddress, scheme: scheme)
        guard headerListSize <= HeadLimits.maximumHeaderListSize else {
            throw .headTooLarge(limit: HeadLimits.maximumHeaderListSize)
        }
    }

    /// Whether a response to this request can carry a body.
    public var allowsResponseBody: Bool { method != .HEAD }
}

/// What the public side adds to a request as X-Forwarded-* (see `appendForwardingFields`):
/// the client's address, when known, and the scheme it spoke.
public struct ForwardingFields: Sendable, Equatable {
    public var clientAddress: String?
    public var scheme: String

    /// The fields' names, lowercase (as HTTP/2 receives and sends them).
    public static let forName = "x-forwarded-for"
    public static let protoName = "x-forwarded-proto"
    public static let hostName = "x-forwarded-host"

    public init(clientAddress: String?, scheme: String) {
        self.clientAddress = clientAddress
        self.scheme = scheme
    }
}

/// The protocol a client spoke to the public side.
public enum ClientProtocol: String, Sendable, Equatable {
    case http1 = "HTTP/1.1"
    case http2 = "HTTP/2"
}

/// A response as it crosses the proxy, without hop-by-hop fields.
public struct ProxyResponseHead: Sendable, Equatable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    /// With a 101: the protocol the app switched to.
    public var upgrade: String?
    /// The response ended with its head (an HTTP/2 HEADERS frame with END_STREAM). An
    /// HTTP/2 downstream ends its stream there too, which keeps a gRPC Trailers-Only
    /// response one frame: clients read its `grpc-status` only then.
    public var endsWithHead: Bool

    public init(
        status: HTTPResponseStatus, headers: HTTPHeaders = HTTPHeaders(), upgrade: String? = nil,
        endsWithHead: Bool = false
    ) {
        self.status = status
        self.headers = headers
        self.upgrade = upgrade
        self.endsWithHead = endsWithHead
    }

    /// Whether a body follows, given the request it answers (RFC 9110 §6.4.1). After a
    /// switch of protocols, the new protocol's bytes are the body.
    public func hasBody(for request: ProxyRequestHead) -> Bool {
        ResponseBodyRule(request).allowsBody(in: self)
    }
}

/// The two things about a request that decide whether its response has a body: small
/// enough to keep beside an exchange without holding (and copying) the whole request.
public struct ResponseBodyRule: Sendable, Equatable {
    public var allowsResponseBody: Bool
    public var upgrades: Bool

    public init(_ request: ProxyRequestHead) {
        allowsResponseBody = request.allowsResponseBody
        upgrades = request.upgrade != nil
    }

    public func allowsBody(in response: ProxyResponseHead) -> Bool {
        let status = response.status
        if status == .switchingProtocols { return upgrades }
        return allowsResponseBody && status.code >= 200 && status != .noContent && status != .notModified
    }
}

extension HTTPHeaders {
    /// `replaceOrAdd` that removes only when the field is there: NIO's `remove(name:)`
    /// goes through the array's general replace even when nothing matches, and the
    /// fields the proxy sets are rarely there already.
    public mutating func replaceOrAppend(name: String, value: String) {
        if contains(name: name) {
            replaceOrAdd(name: name, value: value)
        } else {
            add(name: name, value: value)
        }
    }

    /// Appends to a comma-separated forwarding list such as X-Forwarded-For.
    mutating func appendForwarded(_ name: String, _ value: String) {
        // Fields a client sent on several lines are one list (RFC 9110 §5.3): all of it
        // is kept, in order, before the value added.
        let existing = self[name]
        if existing.isEmpty {
            add(name: name, value: value)
        } else {
            replaceOrAdd(name: name, value: (existing + [value]).joined(separator: ", "))
        }
    }
}

/// How a protocol switch crosses the tunnel, where HTTP/2 has no Upgrade and no 101:
/// the request names the protocol in `requestField`, and a 200 with `responseField`
/// stands for the app's 101. Fields of these names from clients or apps are dropped.
public enum TunnelUpgrade {
    public static let requestField = "pinhole-upgrade"
    public static let responseField = "pinhole-upgraded"
}

/// The parts of an absolute-form request target that matter here.
struct AbsoluteURI {
    let authority: String
    let path: String

    init?(_ text: String) {
        guard let schemeEnd = text.range(of: "://") else { return nil }
        let rest = text[schemeEnd.upperBound...]
        let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        authority = String(rest[..<slash])
        let tail = String(rest[slash...])
        path = tail.isEmpty ? "/" : (tail.hasPrefix("?") ? "/" + tail : tail)
        if authority.isEmpty { return nil }
    }
}
