import Foundation
import NIOCore
import NIOHTTP1
import PinholeCore

/// One request the agent forwarded, as the inspector keeps it: heads, the first bytes
/// of each body, trailers, and when each step happened.
public struct CapturedRequest: Sendable {
    public enum State: String, Sendable {
        /// At the app: no response head yet (a breakpoint, perhaps).
        case pending
        /// The response head arrived; its body is streaming.
        case responding
        case complete
        /// Pinhole could not finish it: the app was unreachable, cut the response, or the
        /// client went away.
        case failed
    }

    /// Given when the store takes the record.
    public internal(set) var id: Int
    /// The request this one replays, if it is a replay.
    public var replayOf: Int?
    /// Wall-clock start, seconds since 1970, for `time`.
    public var wallClock: Double
    /// The request's head as the agent got it. Kept whole: the fields below read it only
    /// when the API asks, so a capture builds no strings of its own.
    public internal(set) var head: ProxyRequestHead
    public var method: String { head.method.rawValue }
    public var path: String { head.path }
    public var authority: String { head.authority }
    public var scheme: String { head.scheme }
    /// What the client spoke to the public side, as the log's `protocol`: HTTP/1.1 or HTTP/2.
    public var clientProtocol: ClientProtocol { head.clientProtocol }
    /// For a gRPC call, its method (the path), as the log's `grpc_method`.
    public var grpcMethod: String? { head.isGRPC ? head.path : nil }
    /// The protocol the request asked to switch to (`websocket`).
    public var upgrade: String? { head.upgrade }
    public var requestHeaders: HTTPHeaders { head.headers }
    public var requestBody = CapturedBody()
    public var requestTrailers: HTTPHeaders?
    public var status: Int?
    public var responseHeaders: HTTPHeaders?
    public var responseBody = CapturedBody()
    public var responseTrailers: HTTPHeaders?
    public var state = State.pending
    public var error: String?
    public var timing: CapturedTiming
    /// The caller's deadline, if it sent one (`x-envoy-expected-rq-timeout-ms`, `grpc-timeout`).
    public var deadline: CallerDeadline?
    /// The request was still without an answer when its caller's deadline passed.
    public var deadlinePassed = false

    init(
        id: Int, head: ProxyRequestHead, replayOf: Int?, wallClock: Double, started: NIODeadline,
        deadline: CallerDeadline?
    ) {
        self.id = id
        self.replayOf = replayOf
        self.wallClock = wallClock
        self.head = head
        self.timing = CapturedTiming(started: started)
        self.deadline = deadline
    }

    /// The client's address, as the relay (or embedded relay) appended it to X-Forwarded-For;
    /// nil when there is none, or the list ends in an empty element.
    public var clientAddress: String? {
        // The last element of the list, its spaces and tabs trimmed; read in place, as the
        // live feed asks for every summary (Foundation's split and trim showed in its profile).
        guard let list = requestHeaders.first(name: ForwardingFields.forName) else { return nil }
        let bytes = list.utf8
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = bytes.lastIndex(of: UInt8(ascii: ",")).map(bytes.index(after:)) ?? bytes.startIndex
        var end = bytes.endIndex
        while start < end, isSpace(bytes[start]) { start = bytes.index(after: start) }
        while start < end, isSpace(bytes[bytes.index(before: end)]) { end = bytes.index(before: end) }
        return start < end ? String(list[start..<end]) : nil
    }
}

/// The first bytes of a body, and how many there were in all.
public struct CapturedBody: Sendable {
    public var kept = ByteBuffer()
    public var totalBytes = 0

    public var isTruncated: Bool { totalBytes > kept.readableBytes }

    /// Keeps what is still under `limit` of `body`, and counts all of it. The first piece
    /// is kept as a view of its buffer, without a copy (most bodies come in one piece):
    /// it is held only while the exchange is in flight, since the ring keeps a copy of the
    /// finished record. Later pieces are appended to a buffer of our own.
    mutating func keep(_ body: ByteBuffer, limit: Int) {
        totalBytes += body.readableBytes
        let count = min(limit - kept.readableBytes, body.readableBytes)
        guard count > 0 else { return }
        let piece = body.getSlice(at: body.readerIndex, length: count)!
        if kept.readableBytes == 0 {
            kept = piece
        } else {
            kept.writeImmutableBuffer(piece)
        }
    }
}

/// When each step of an exchange happened (monotonic clock).
public struct CapturedTiming: Sendable {
    public var started: NIODeadline
    /// The head was written to a connection to the app.
    public var delivered: NIODeadline?
    /// The request's body (and end) had all been passed on.
    public var requestEnded: NIODeadline?
    public var responseStarted: NIODeadline?
    public var finished: NIODeadline?

    /// Waiting for a connection to the app.
    public var queued: TimeAmount? { delivered.map { $0 - started } }
    /// From the request reaching the app to its response head: the breakpoint's share.
    public var atApp: TimeAmount? {
        guard let responseStarted else { return nil }
        return responseStarted - (delivered ?? started)
    }
    /// From the response head to its end.
    public var streaming: TimeAmount? {
        guard let responseStarted, let finished else { return nil }
        return finished - responseStarted
    }
    public var duration: TimeAmount? { finished.map { $0 - started } }
}

/// A deadline the caller announced with the request.
public struct CallerDeadline: Sendable, Equatable {
    public var timeout: TimeAmount
    /// The header it came from.
    public var source: String

    init(timeout: TimeAmount, source: String) {
        self.timeout = timeout
        self.source = source
    }

    /// Envoy's header wins over gRPC's. The fields are read in one pass, comparing only
    /// names of the right length: every captured request is asked.
    init?(headers: HTTPHeaders) {
        var envoy: String?
        var grpc: String?
        for (name, value) in headers {
            switch name.utf8.count {
            case 30 where envoy == nil && name.isFieldName("x-envoy-expected-rq-timeout-ms"): envoy = value
            case 12 where grpc == nil && name.isFieldName("grpc-timeout"): grpc = value
            default: continue
            }
        }
        if let value = envoy, let milliseconds = Int64(value), milliseconds > 0 {
            self.timeout = .milliseconds(milliseconds)
            self.source = "x-envoy-expected-rq-timeout-ms"
        } else if let value = grpc, let timeout = Self.grpcTimeout(value) {
            self.timeout = timeout
            self.source = "grpc-timeout"
        } else {
            return nil
        }
    }

    /// gRPC's `TimeoutValue TimeoutUnit`: up to eight digits, then H, M, S, m, u or n.
    static func grpcTimeout(_ text: String) -> TimeAmount? {
        guard let unit = text.last, text.count >= 2, text.count <= 9, let value = Int64(text.dropLast()), value > 0
        else { return nil }
        switch unit {
        case "H": return .hours(value)
        case "M": return .minutes(value)
        case "S": return .seconds(value)
        case "m": return .milliseconds(value)
        case "u": return .microseconds(value)
        case "n": return .nanoseconds(value)
        default: return nil
        }
    }
}
