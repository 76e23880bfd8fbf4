import NIOCore
import NIOHTTP1

// One proxied request/response is an *exchange* between a downstream (the side that
// received the request: a public HTTP/1 connection, or a tunnel stream at the agent)
// and an upstream (the side that answers it: a tunnel stream at the relay, or a
// connection to the target). Both are event-loop-bound objects that talk through
// these two protocols.
//
// Backpressure is symmetric and writability-based, like NIO's own channels: a side
// that produces body bytes stops while the receiver can take no more
// (`canTakeResponseBody`, `canTakeRequestBody`), and resumes when told its writability
// changed. Neither side ever buffers a whole body. The two have different names so that
// one object can be both: a layer between the two sides (the inspector's capture, a
// stoppable exchange) then needs no second object to face the other way.

/// The side that asked; receives the response.
public protocol ExchangeDownstream: AnyObject {
    /// `consuming`: a downstream that adds fields (`ResponseMarkingTarget`) then changes
    /// the sender's own head in place instead of copying its field list. Conformers may
    /// take it borrowed.
    func exchangeReceivedHead(_ head: consuming ProxyResponseHead)
    func exchangeReceivedBody(_ body: ByteBuffer)
    func exchangeReceivedEnd(trailers: HTTPHeaders?)
    /// The exchange failed. Before the head, the downstream answers with
    /// `error.status`; after it, it can only cut the response short.
    func exchangeFailed(_ error: ExchangeError)
    /// The upstream can take request body again (its `canTakeRequestBody` changed).
    func exchangeUpstreamWritabilityChanged()
    /// Whether more response body can be taken now.
    var canTakeResponseBody: Bool { get }
    /// The request reached the application: its head was written to a connection to the
    /// target. The inspector's "queued" time ends there. Called once, by the upstream that
    /// writes to the app; a layer between the two sides that the capture may sit behind
    /// (the tunnel's mark, the fair share) passes it on. A requirement with a default, not a protocol to cast to: a cast
    /// per request showed in profiles (a runtime conformance lookup, failing for most).
    func exchangeRequestDelivered()
}

extension ExchangeDownstream {
    public func exchangeRequestDelivered() {}
}

/// The side that answers; receives the request body.
public protocol ExchangeUpstream: AnyObject {
    func sendBody(_ body: ByteBuffer)
    func sendEnd(trailers: HTTPHeaders?)
    /// The downstream is gone: stop, and release what the exchange holds.
    func cancel()
    /// The downstream can take response body again (its `canTakeResponseBody` changed).
    func downstreamWritabilityChanged()
    /// Whether more request body can be taken now.
    var canTakeRequestBody: Bool { get }
}

/// Something that answers requests: the local target, or a tunnel.
public protocol ExchangeTarget: Sendable {
    /// Starts an exchange whose downstream lives on `eventLoop`. The returned upstream
    /// is to be used on that loop too. Throws when it is known at once that nothing
    /// can answer (for example, no agent connected).
    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream

    /// What the per-tunnel cap on requests in flight counts this target by (see
    /// `InFlightLimits`): a class's identity (a tunnel is one), nil for a struct, which
    /// counts per address only. A requirement with a default for each, so asking costs a
    /// call, not the runtime casts (`as Any`, `is AnyClass`, `as AnyObject`) that showed
    /// in relay profiles on every request.
    var tunnelIdentity: ObjectIdentifier? { get }

    /// The tunnel `head` would go through, for the same cap: `tunnelIdentity`, unless the
    /// target picks a tunnel per request (a shared service's alias picks its developer
    /// by the request's headers, and each developer's tunnel has its own cap).
    func tunnelIdentity(for head: ProxyRequestHead) -> ObjectIdentifier?
}

extension ExchangeTarget {
    public var tunnelIdentity: ObjectIdentifier? { nil }
    public func tunnelIdentity(for head: ProxyRequestHead) -> ObjectIdentifier? { tunnelIdentity }
}

extension ExchangeTarget where Self: AnyObject {
    public var tunnelIdentity: ObjectIdentifier? { ObjectIdentifier(self) }
}

/// Called once per finished exchange, for the agent's request log.
public struct ExchangeRecord: Sendable {
    public var method: String
    public var path: String
    /// The status the client got: the app's, or Pinhole's (see `outcome`); 0 when no
    /// answer went out at all.
    public var status: Int
    public var duration: TimeAmount
    public var startedAt: NIODeadline
    /// Request body bytes read from the client.
    public var bytesIn: Int
    /// Response body bytes sent toward the client.
    public var bytesOut: Int
    public var outcome: Outcome
    /// The protocol the client spoke to the public side: "HTTP/1.1" or "HTTP/2".
    public var `protocol`: String
    /// For a gRPC call, its method (`/pkg.Service/Method`).
    public var grpcMethod: String?
    /// For a gRPC call, the `grpc-status` it ended with, when one was seen.
    public var grpcStatus: Int?
    /// Set when the request was announced as waiting (see `RequestWatch`): the
    /// announcement's number, so that the log can match the two.
    public var waitingID: Int?

    /// How the exchange ended.
    public enum Outcome: Sendable, Equatable {
        /// The app's response went out whole.
        case complete
        /// Pinhole answered instead of the app (the status is Pinhole's), because of this.
        case answeredByPinhole(ExchangeError)
        /// The response began and broke off after `bytesOut` bytes, of `expected` when the
        /// head announced a length; `error` says why, when known.
        case cutShort(ExchangeError?, expected: Int?)
        /// The client went away (or the relay let the request go) before the response was
        /// complete.
        case abandoned(reason: String)
    }

    public init(
        method: String, path: String, status: Int, duration: TimeAmount, startedAt: NIODeadline,
        bytesIn: Int = 0, bytesOut: Int = 0, outcome: Outcome = .complete, protocol: String = "HTTP/1.1",
        grpcMethod: String? = nil, grpcStatus: Int? = nil, waitingID: Int? = nil
    ) {
        self.method = method
        self.path = path
        self.status = status
        self.duration = duration
        self.startedAt = startedAt
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.outcome = outcome
        self.protocol = `protocol`
        self.grpcMethod = grpcMethod
        self.grpcStatus = grpcStatus
        self.waitingID = waitingID
    }

    /// The record of `request`, answered with `status`, ending now.
    public init(
        request: ProxyRequestHead, status: Int, startedAt: NIODeadline, bytesIn: Int = 0, bytesOut: Int = 0,
        outcome: Outcome = .complete, grpcStatus: Int? = nil, waitingID: Int? = nil
    ) {
        self.init(
            method: request.method.rawValue, path: request.path, status: status, duration: .now() - startedAt,
            startedAt: startedAt, bytesIn: bytesIn, bytesOut: bytesOut, outcome: outcome,
            protocol: request.clientProtocol.rawValue, grpcMethod: request.isGRPC ? request.path : nil,
            grpcStatus: grpcStatus, waitingID: waitingID)
    }
}
