import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2

// How requests and responses travel as HTTP/2 streams through the tunnel (see
// docs/PROTOCOL.md): pseudo-headers, and a protocol switch as `TunnelUpgrade` fields.

/// Request fields that exist only inside the tunnel, dropped as the agent reads them.
public enum TunnelFields {
    /// Present (`HTTP/2`) when the public client spoke HTTP/2, for the agent's request log.
    public static let clientProtocol = "pinhole-client-protocol"
}

extension ProxyRequestHead {
    /// The request as it crosses the tunnel: HTTP/2 headers, pseudo-headers first (names
    /// are lowercased as they are sent), then the tunnel's own fields.
    public var http2Headers: HTTP2Headers {
        var fields = appHTTP2Headers
        if let upgrade { fields.add(name: TunnelUpgrade.requestField, value: upgrade) }
        if clientProtocol == .http2 { fields.add(name: TunnelFields.clientProtocol, value: clientProtocol.rawValue) }
        return fields
    }

    /// The request as an HTTP/2 app gets it: no tunnel fields.
    public var appHTTP2Headers: HTTP2Headers {
        var fields = HTTP2Headers()
        fields.reserveCapacity(headers.count + 6)
        fields.add(name: ":method", value: method.rawValue)
        fields.add(name: ":scheme", value: scheme)
        fields.add(name: ":authority", value: authority)
        fields.add(name: ":path", value: path)
        fields.append(http1: headers)
        return fields
    }

    /// Reads a request from HTTP/2 headers, as the agent receives it. With `forwarding` (the
    /// public side), sets the X-Forwarded-* fields in the same pass, as
    /// `appendForwardingFields` would after it: a client's own -Proto and -Host go, and
    /// its -For list is extended, all three then last. Done after, it took three more
    /// searches of the fields, and three of NIO's checked appends (about 1.3% of the
    /// embedded relay under h2load).
    public init(http2 fields: HTTP2Headers, forwarding: ForwardingFields? = nil) throws(ExchangeError) {
        var method: String?
        var path: String?
        var authority: String?
        var scheme = "http"
        var upgrade: String?
        var clientProtocol = ClientProtocol.http1
        // An array, not HTTPHeaders.add, which would recheck each name for non-ASCII
        // bytes: nghttp2 has already refused any name that is not a lowercase token.
        var headers: [(String, String)] = []
        // Room for the X-Forwarded-* fields the public side adds, so they do not regrow it.
        headers.reserveCapacity(fields.count + 3)
        // HTTP/2 clients may split Cookie into one field per pair; an HTTP/1.1 app
        // expects one line (RFC 9113 §8.2.3), so they are joined with "; ".
        var cookieIndex: Int?
        // The X-Forwarded-For list the client sent, its fields joined in order (one list,
        // RFC 9110 §5.3), when the public side extends it.
        var clientForwardedFor: String?
        let extendsForwardedFor = forwarding?.clientAddress != nil
        for (name, value) in fields {
            // Pseudo-headers and ordinary fields are told apart by their first byte, so
            // each field is compared with the names of its own kind only.
            if name.isPseudoHeader {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                case ":scheme": scheme = value
                default: break
                }
                continue
            }
            switch name {
            case "cookie":
                if let cookieIndex {
                    headers[cookieIndex].1 += "; " + value
                } else {
                    cookieIndex = headers.count
                    headers.append((name, value))
                }
            case "host": authority = authority ?? value
            case TunnelUpgrade.requestField: upgrade = value
            case TunnelFields.clientProtocol: clientProtocol = ClientProtocol(rawValue: value) ?? .http1
            case ForwardingFields.forName where extendsForwardedFor:
                clientForwardedFor = clientForwardedFor.map { $0 + ", " + value } ?? value
            case ForwardingFields.protoName where forwarding != nil,
                ForwardingFields.hostName where forwarding != nil:
                continue  // the public side's own, below
            default: headers.append((name, value))
            }
        }
        guard let method, let path, let authority else {
            throw .malformedRequest("the tunnelled request lacks :method, :path or :authority")
        }
        if let forwarding {
            if let address = forwarding.clientAddress {
                let list = clientForwardedFor.map { $0 + ", " + address } ?? address
                headers.append((ForwardingFields.forName, list))
            }
            headers.append((ForwardingFields.protoName, forwarding.scheme))
            headers.append((ForwardingFields.hostName, authority))
        }
        self.init(
            method: HTTPMethod(rawValue: method), path: path, authority: authority, scheme: scheme,
            headers: HTTPHeaders(headers), upgrade: upgrade, clientProtocol: clientProtocol)
    }
}

extension ProxyResponseHead {
    /// HTTP/2 has no 101 (RFC 9113 §8.6): a switch travels as a 200 that names the protocol.
    public var http2Headers: HTTP2Headers {
        var fields = HTTP2Headers()
        fields.reserveCapacity(headers.count + 2)
        let switched = status == .switchingProtocols
        fields.add(name: ":status", value: switched ? "200" : String(status.code))
        fields.append(http1: headers)
        if switched { fields.add(name: TunnelUpgrade.responseField, value: upgrade ?? "websocket") }
        return fields
    }

    public init(http2 fields: HTTP2Headers) throws(ExchangeError) {
        var status: Int?
        var upgrade: String?
        var headers: [(String, String)] = []  // see ProxyRequestHead.init(http2:)
        headers.reserveCapacity(fields.count)
        for (name, value) in fields {
            if name == ":status" {
                status = Int(value)
            } else if name == TunnelUpgrade.responseField {
                upgrade = value
            } else if !name.isPseudoHeader {
                headers.append((name, value))
            }
        }
        guard let status, (100...999).contains(status) else {
            throw .protocolViolation("the tunnelled response has no valid :status")
        }
        if upgrade != nil, status != 200 {
            throw .protocolViolation("a protocol switch tunnelled with status \(status)")
        }
        self.init(
            status: upgrade == nil ? HTTPResponseStatus(statusCode: status) : .switchingProtocols,
            headers: HTTPHeaders(headers), upgrade: upgrade)
    }
}

extension String {
    /// Whether this field name is an HTTP/2 pseudo-header (`:method`, `:status`, ...):
    /// one byte compared, where `hasPrefix(":")` goes through the general string search.
    fileprivate var isPseudoHeader: Bool { utf8.first == UInt8(ascii: ":") }
}

extension HTTPHeaders {
    /// HTTP/2 fields (trailers) as HTTP/1 headers; pseudo-headers are not expected here.
    public init(http2 fields: HTTP2Headers) {
        self.init(fields.map { ($0.name, $0.value) })
    }
}

extension HTTP2Stream {
    /// Ends the stream, with `trailers` when there are any.
    public func finish(trailers: HTTPHeaders?) {
        if let trailers, !trailers.isEmpty {
            sendTrailers(HTTP2Headers(http1: trailers))
        } else {
            finish()
        }
    }
}

extension HTTP2Headers {
    /// HTTP/1 headers (trailers) as HTTP/2 fields.
    public init(http1 headers: HTTPHeaders) {
        self.init()
        append(http1: headers)
    }

    /// Appends HTTP/1 fields as they are: HTTP2Headers lowercases names as it sends them.
    public mutating func append(http1 headers: HTTPHeaders) {
        for (name, value) in headers { add(name: name, value: value) }
    }
}
