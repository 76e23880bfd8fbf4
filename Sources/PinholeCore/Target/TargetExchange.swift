import NIOCore
import NIOHTTP1

/// One request to the target: the upstream half of an exchange.
final class TargetExchange: ExchangeUpstream {
    let head: ProxyRequestHead
    private(set) var downstream: (any ExchangeDownstream)?
    let target: TargetAddress
    private(set) var connection: TargetConnection?

    /// Body parts that arrived before a connection was ready (an array: empty, it costs
    /// no allocation, and most exchanges never use it).
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    private(set) var requestEnded = false
    private var requestTrailers: HTTPHeaders?
    /// True once any request body byte went to a connection: a retry could duplicate it.
    private(set) var sentBody = false
    private(set) var responseStarted = false
    private(set) var finished = false

    /// Before a connection is ready, accept this much body; then report unwritable.
    private static let pendingLimit = 64 * 1024

    init(head: ProxyRequestHead, downstream: any ExchangeDownstream, target: TargetAddress) {
        self.head = head
        self.downstream = downstream
        self.target = target
    }

    var isWritable: Bool {
        guard let connection else { return pendingBytes < Self.pendingLimit }
        return connection.isWritable
    }

    func sendBody(_ body: ByteBuffer) {
        guard !finished, !requestEnded else { return }
        if let connection {
            sentBody = true
            connection.writeBody(body)
        } else {
            pending.append(body)
            pendingBytes += body.readableBytes
        }
    }

    func sendEnd(trailers: HTTPHeaders?) {
        guard !finished, !requestEnded else { return }
        requestEnded = true
        requestTrailers = trailers
        connection?.writeEnd(trailers: trailers)
    }

    func cancel() {
        guard !finished else { return }
        finished = true
        downstream = nil
        connection?.abort()
        connection = nil
    }

    func downstreamWritabilityChanged() {
        connection?.resumeReadingIfWanted()
    }

    var downstreamIsWritable: Bool { downstream?.isWritable ?? true }

    // MARK: Called by TargetConnection

    /// Hands the request to `connection`: head, any early body, and the end if known.
    func attach(to connection: TargetConnection) -> (head: ProxyRequestHead, body: [ByteBuffer], end: HTTPHeaders??) {
        self.connection = connection
        (downstream as? any ExchangeDeliveryObserving)?.exchangeRequestDelivered()
        let body = pending
        if !body.isEmpty { sentBody = true }
        pending.removeAll()
        pendingBytes = 0
        return (head, body, requestEnded ? .some(requestTrailers) : .none)
    }

    func failToStart(reason: String) {
        guard !finished else { return }
        finished = true
        downstream?.exchangeFailed(.targetUnreachable(target: target.description, reason: reason))
        downstream = nil
    }

    func receivedHead(_ head: ProxyResponseHead) {
        guard !finished else { return }
        responseStarted = true
        downstream?.exchangeReceivedHead(head)
    }

    func receivedBody(_ body: ByteBuffer) {
        guard !finished else { return }
        downstream?.exchangeReceivedBody(body)
    }

    func receivedEnd(trailers: HTTPHeaders?) {
        guard !finished else { return }
        finished = true
        connection = nil
        downstream?.exchangeReceivedEnd(trailers: trailers)
        downstream = nil
    }

    /// The connection closed before the response was complete.
    func connectionLost() {
        guard !finished else { return }
        finished = true
        connection = nil
        downstream?.exchangeFailed(
            responseStarted
                ? .targetClosedEarly(target: target.description)
                : .targetUnreachable(target: target.description, reason: "the connection closed before a response"))
        downstream = nil
    }

    /// The target's bytes are not a valid response.
    func receivedInvalidResponse(_ error: HTTP1SyntaxError) {
        guard !finished else { return }
        finished = true
        connection = nil
        downstream?.exchangeFailed(.protocolViolation("\(target) sent \(error.description)"))
        downstream = nil
    }

    /// A reused keep-alive connection was already closed by the target. Nothing of the
    /// request reached the application, so it may go again on a fresh connection.
    func detachForRetry() {
        connection = nil
    }

    func connectionWritabilityChanged() {
        downstream?.exchangeUpstreamWritabilityChanged()
    }
}
