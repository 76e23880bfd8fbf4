import NIOCore
import NIOHTTP1

// A public connection and the tunnel it uses may run on different event loops. Then
// every call between downstream (loop D) and upstream (loop U) hops loops through
// these two halves of a bridge. Each half keeps a copy of the far side's writability,
// so `canTakeRequestBody` and `canTakeResponseBody` are answered without waiting; copies
// are refreshed whenever the far side reports a change. Calls hop with `execute`, which
// keeps their order.
//
// A copy is late by one hop, and a downstream does not always report turning
// unwritable (an HTTP/2 stream does not: its producer is expected to ask). So each
// direction also counts the body bytes sent across and not yet confirmed taken, and
// stops at a bound: without it a public HTTP/2 client that stopped reading had the
// relay take a whole 8 MB answer from the tunnel into memory.

extension ExchangeTarget {
    /// Starts an exchange on `upstreamLoop` for a downstream on `downstreamLoop`,
    /// bridging the two when they differ.
    public func startBridged(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, downstreamLoop: any EventLoop,
        upstreamLoop: any EventLoop,
        start:
            @escaping @Sendable (ProxyRequestHead, any ExchangeDownstream) throws(ExchangeError) -> any ExchangeUpstream
    ) -> any ExchangeUpstream {
        let bridge = BridgedUpstream(downstream: downstream, upstreamLoop: upstreamLoop)
        let bound = NIOLoopBound(bridge, eventLoop: downstreamLoop)
        let box = bridge.far
        upstreamLoop.execute {
            let near = UpstreamHalf(bridge: bound, downstreamLoop: downstreamLoop)
            box.value = near
            do throws(ExchangeError) {
                near.upstream = try start(head, near)
            } catch {
                near.exchangeFailed(error)
            }
        }
        return bridge
    }
}

/// The downstream's view of an upstream on another loop. Lives on loop D.
final class BridgedUpstream: ExchangeUpstream {
    weak var downstream: (any ExchangeDownstream)?
    let upstreamLoop: any EventLoop
    /// The other half, created on loop U by the first task sent there.
    let far: NIOLoopBoundBox<UpstreamHalf?>
    var upstreamWritable = true
    /// Request body sent across but not yet taken by the upstream. The far side's
    /// writability only arrives after a hop, so this is what keeps a fast public
    /// client from queueing an unbounded body in the other loop's task queue.
    private var inFlight = 0
    private static let inFlightLimit = 256 * 1024
    /// Answer body taken by the downstream since the far side last heard.
    private var answerUnconfirmed = 0
    /// The downstream's writability as the far side last heard it.
    private var reportedDownstreamWritable = true

    init(downstream: any ExchangeDownstream, upstreamLoop: any EventLoop) {
        self.downstream = downstream
        self.upstreamLoop = upstreamLoop
        self.far = .makeEmptyBox(valueType: UpstreamHalf.self, eventLoop: upstreamLoop)
    }

    var canTakeRequestBody: Bool { upstreamWritable && inFlight < Self.inFlightLimit }

    func sendBody(_ body: ByteBuffer) {
        inFlight += body.readableBytes
        let far = self.far
        upstreamLoop.execute { far.value?.takeBody(body) }
    }

    func sendEnd(trailers: HTTPHeaders?) {
        let far = self.far
        upstreamLoop.execute { far.value?.upstream?.sendEnd(trailers: trailers) }
    }

    func cancel() {
        let far = self.far
        upstreamLoop.execute {
            far.value?.upstream?.cancel()
            far.value?.finish()
            far.value = nil
        }
    }

    func deliver(_ message: UpstreamHalf.Message) {
        switch message {
        case .head(let head): downstream?.exchangeReceivedHead(head)
        case .body(let body):
            downstream?.exchangeReceivedBody(body)
            answerBodyTaken(body.readableBytes)
        case .end(let trailers): downstream?.exchangeReceivedEnd(trailers: trailers)
        case .failed(let error): downstream?.exchangeFailed(error)
        case .upstreamWritable(let writable):
            upstreamWritable = writable
            downstream?.exchangeUpstreamWritabilityChanged()
        case .bodyTaken(let count, let writable):
            let wasWritable = canTakeRequestBody
            inFlight -= count
            upstreamWritable = writable
            if !wasWritable && canTakeRequestBody { downstream?.exchangeUpstreamWritabilityChanged() }
        }
    }

    /// Answer body reached the downstream: tell the far side once enough was taken to
    /// matter, or when the downstream's writability is not what the far side last heard.
    private func answerBodyTaken(_ count: Int) {
        answerUnconfirmed += count
        let writable = downstream?.canTakeResponseBody ?? true
        guard answerUnconfirmed >= UpstreamHalf.confirmEvery || writable != reportedDownstreamWritable else { return }
        let taken = answerUnconfirmed
        answerUnconfirmed = 0
        reportedDownstreamWritable = writable
        let far = self.far
        upstreamLoop.execute { far.value?.answerTaken(taken, downstreamWritable: writable) }
    }

    func downstreamWritabilityChanged() {
        let writable = downstream?.canTakeResponseBody ?? true
        reportedDownstreamWritable = writable
        let taken = answerUnconfirmed
        answerUnconfirmed = 0
        let far = self.far
        upstreamLoop.execute { far.value?.answerTaken(taken, downstreamWritable: writable) }
    }
}

/// The upstream's view of a downstream on another loop. Lives on loop U.
final class UpstreamHalf: ExchangeDownstream {
    var upstream: (any ExchangeUpstream)?
    /// Cleared when the exchange is over, which breaks the cycle through the bridge.
    private var bridge: NIOLoopBound<BridgedUpstream>?
    private let downstreamLoop: any EventLoop
    private var downstreamWritable = true
    /// Answer body sent across and not yet confirmed taken by the downstream.
    private var answerInFlight = 0
    /// The most answer body on its way across at once (see the top of this file).
    static let answerInFlightLimit = 256 * 1024
    /// The downstream confirms what it took at least this often.
    static let confirmEvery = 64 * 1024

    init(bridge: NIOLoopBound<BridgedUpstream>, downstreamLoop: any EventLoop) {
        self.bridge = bridge
        self.downstreamLoop = downstreamLoop
    }

    var canTakeResponseBody: Bool { downstreamWritable && answerInFlight < Self.answerInFlightLimit }

    /// The downstream took `count` more bytes of the answer and is `downstreamWritable`;
    /// an upstream that held back may go on.
    func answerTaken(_ count: Int, downstreamWritable: Bool) {
        let wasWritable = canTakeResponseBody
        answerInFlight -= count
        self.downstreamWritable = downstreamWritable
        // A change reported without bytes is news to the upstream even if the copy
        // already said so: it asked to be told when the downstream moves.
        if canTakeResponseBody && (!wasWritable || count == 0) { upstream?.downstreamWritabilityChanged() }
    }

    func finish() {
        bridge = nil
        upstream = nil
    }

    /// What crosses back to loop D.
    enum Message: Sendable {
        case head(ProxyResponseHead)
        case body(ByteBuffer)
        case end(HTTPHeaders?)
        case failed(ExchangeError)
        case upstreamWritable(Bool)
        /// The upstream took `count` body bytes and is now (not) writable.
        case bodyTaken(Int, writable: Bool)
    }

    func takeBody(_ body: ByteBuffer) {
        let count = body.readableBytes
        upstream?.sendBody(body)
        send(.bodyTaken(count, writable: upstream?.canTakeRequestBody ?? true))
    }

    private func send(_ message: Message) {
        guard let bridge else { return }
        downstreamLoop.execute { bridge.value.deliver(message) }
    }

    func exchangeReceivedHead(_ head: ProxyResponseHead) {
        send(.head(head))
    }

    func exchangeReceivedBody(_ body: ByteBuffer) {
        answerInFlight += body.readableBytes
        send(.body(body))
    }

    func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        send(.end(trailers))
        finish()
    }

    func exchangeFailed(_ error: ExchangeError) {
        send(.failed(error))
        finish()
    }

    func exchangeUpstreamWritabilityChanged() {
        send(.upstreamWritable(upstream?.canTakeRequestBody ?? true))
    }
}
