import Foundation
import NIOCore
import PinholeCore

/// The agent–relay wire protocol (see docs/PROTOCOL.md): TLS with ALPN `pinhole/1`,
/// one handshake message each way, then HTTP/2 with the relay as the client.
public enum TunnelProtocol {
    /// The ALPN id; a new major version gets a new id, so old and new never mis-talk.
    public static let applicationProtocol = "pinhole/1"
    /// The handshake's own version field, for changes within `pinhole/1`.
    public static let version = 1
    /// Handshake messages are small; anything larger is refused before parsing.
    public static let maximumMessageSize = 16 * 1024
    /// GOAWAY debug data for an agent connection that another connection with the same
    /// name and token replaced. An agent that receives it stops instead of reconnecting:
    /// two agents sharing a name would otherwise take it from each other for ever.
    public static let replacedGoAwayData = "pinhole: replaced by a newer connection for this tunnel"
}

/// The agent's first message: who it is and which tunnel it wants.
public struct AgentHello: Codable, Sendable, Equatable {
    public var version: Int
    public var token: String
    /// The tunnel name (a DNS label) the agent asks for.
    public var name: String
    /// Kubernetes Services (`service` or `service.namespace`) the relay should route here too.
    public var aliases: [String]
    /// The agent's software, for the relay's log.
    public var software: String
    /// The service this agent shares with other developers, and how it takes its
    /// traffic. Absent from older agents; a relay that does not know it ignores it.
    public var service: ServiceShare?

    public init(
        token: String, name: String, aliases: [String] = [], software: String = PinholeVersion.agentSoftware
    ) {
        self.version = TunnelProtocol.version
        self.token = token
        self.name = name
        self.aliases = aliases
        self.software = software
    }
}

/// Why a relay refused a tunnel. The agent stops on every one of these but `slowDown`.
public enum RefusalReason: String, Codable, Sendable {
    /// Too many token checks from the agent's address: it waits and tries again.
    case slowDown = "slow_down"
    case badToken = "bad_token"
    case nameTaken = "name_taken"
    case aliasTaken = "alias_taken"
    case tooManyTunnels = "too_many_tunnels"
    /// A relay of a port per tunnel has no port left to give (all held, or in use by others).
    case noFreePort = "no_free_port"
    case invalidRequest = "invalid_request"
    case unsupportedVersion = "unsupported_version"
    /// Another developer on the same service already takes requests with this match.
    case matchTaken = "match_taken"
}

/// The relay's answer: the tunnel it assigned, or one refusal.
public struct RelayAnswer: Codable, Sendable, Equatable {
    public struct Tunnel: Codable, Sendable, Equatable {
        public var name: String
        /// Where the public reaches the tunnel, such as `http://dev.tunnel.example.com:8080`.
        public var url: String
        /// Host and port for an Istio redirect (`host` alone when the port is the scheme's default).
        public var authority: String
        public var host: String
        public var port: Int
        public var scheme: String

        public init(name: String, host: String, port: Int, scheme: String = "http") {
            self.name = name
            self.host = host
            self.port = port
            self.scheme = scheme
            let defaultPort = scheme == "https" ? 443 : 80
            let shownHost = host.contains(":") ? "[\(host)]" : host
            self.authority = port == defaultPort ? shownHost : "\(shownHost):\(port)"
            self.url = "\(scheme)://\(authority)"
        }
    }

    public struct Refusal: Codable, Sendable, Equatable {
        public var reason: RefusalReason
        /// One plain sentence for the person running the agent.
        public var message: String

        public init(reason: RefusalReason, message: String) {
            self.reason = reason
            self.message = message
        }
    }

    public var version: Int
    public var tunnel: Tunnel?
    public var refusal: Refusal?

    public static func accepted(_ tunnel: Tunnel) -> RelayAnswer {
        RelayAnswer(version: TunnelProtocol.version, tunnel: tunnel, refusal: nil)
    }

    public static func refused(_ reason: RefusalReason, _ message: String) -> RelayAnswer {
        RelayAnswer(version: TunnelProtocol.version, tunnel: nil, refusal: Refusal(reason: reason, message: message))
    }
}

/// Handshake framing: a 4-byte big-endian length, then that many bytes of JSON.
public enum HandshakeFraming {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func encode<Message: Encodable>(
        _ message: Message, allocator: ByteBufferAllocator
    ) throws -> ByteBuffer {
        let json = try JSONEncoder().encode(message)
        var buffer = allocator.buffer(capacity: 4 + json.count)
        buffer.writeInteger(UInt32(json.count))
        buffer.writeBytes(json)
        return buffer
    }

    /// Takes one message off the front of `buffer`, or returns nil if it is not complete yet.
    public static func decode<Message: Decodable>(
        _ type: Message.Type, from buffer: inout ByteBuffer
    ) throws -> Message? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length <= TunnelProtocol.maximumMessageSize else {
            throw Failure(
                description:
                    "handshake message of \(length) bytes exceeds the \(TunnelProtocol.maximumMessageSize)-byte limit")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let bytes = buffer.readSlice(length: Int(length))!
        do {
            return try JSONDecoder().decode(type, from: Data(bytes.readableBytesView))
        } catch {
            throw Failure(description: "malformed handshake message: \(Self.describe(error))")
        }
    }

    /// A decoding failure in words: JSONDecoder's own descriptions are Swift dumps
    /// (`keyNotFound(CodingKeys(stringValue: ...`), which must not reach a message.
    public static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else { return "it cannot be read" }
        switch error {
        case .keyNotFound(let key, _): return "the field '\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return field.isEmpty ? "it has the wrong shape" : "the field '\(field)' has the wrong type"
        case .dataCorrupted(let context):
            if let field = context.codingPath.last?.stringValue {
                return "the field '\(field)' has a value not allowed"
            }
            return "it is not valid JSON"
        @unknown default: return "it cannot be read"
        }
    }
}
