import NIOCore
import NIOHTTP1
import Synchronization

/// A target that can be stopped: `stop()` answers every request still in flight with a
/// 503 "pinhole: the agent stopped" and refuses new ones, so a Ctrl-C never leaves a
/// client with an empty reply. It sits between the downstream and the real target,
/// passing everything through and keeping a list of the exchanges not yet finished.
public final class StoppableTarget: ExchangeTarget {
    private struct State {
        var live: [ObjectIdentifier: (loop: any EventLoop, exchange: NIOLoopBound<StoppableExchange>)] = [:]
        var stopped = false
    }

    private let inner: any ExchangeTarget
    /// Taken for every request, from every event loop: a `Mutex` (see `InspectorStore.state`).
    private let state = Mutex(State())

    public init(_ inner: any ExchangeTarget) {
        self.inner = inner
    }

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        let exchange = StoppableExchange(downstream: downstream, target: self)
        let key = ObjectIdentifier(exchange)
        let bound = NIOLoopBound(exchange, eventLoop: eventLoop)
        let admitted = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.live[key] = (eventLoop, bound)
            return true
        }
        guard admitted else { throw .agentStopped }
        do {
            exchange.upstream = try inner.startExchange(head, downstream: exchange, on: eventLoop)
        } catch {
            finished(exchange)
            throw error
        }
        return exchange
    }

    /// Answers every exchange in flight with `ExchangeError.agentStopped`, refuses any
    /// new one, and returns how many were abandoned. When it returns, each answer has
    /// been handed to its connection.
    public func stop() async -> Int {
        let live = state.withLock { state in
            state.stopped = true
            defer { state.live.removeAll() }
            return Array(state.live.values)
        }
        for (loop, exchange) in live {
            try? await loop.submit { exchange.value.abandon() }.get()
        }
        // One more turn of each loop: writes that the answers queued (an HTTP/2 stream
        // flushes its frames in a task of its own) go out before the caller closes up.
        let loops = Dictionary(live.map { (ObjectIdentifier($0.loop), $0.loop) }) { first, _ in first }
        for loop in loops.values { try? await loop.submit {}.get() }
        return live.count
    }

    fileprivate func finished(_ exchange: StoppableExchange) {
        let key = ObjectIdentifier(exchange)
        _ = state.withLock { $0.live.removeValue(forKey: key) }
    }
}

/// One exchange through a `StoppableTarget`: the downstream's upstream, and the real
/// target's downstream. The request passes through to the real target's upstream, and the
/// answer comes back the same way. The references are dropped as it ends, which breaks
/// the cycle they make while it runs.
final class StoppableExchange: ExchangeUpstream, ExchangeDownstream {
    fileprivate var downstream: (any ExchangeDownstream)?
    var upstream: (any ExchangeUpstream)?
    private let target: StoppableTarget

    init(downstream: any ExchangeDownstream, target: StoppableTarget) {
        self.downstream = downstream
        self.target = target
    }

    /// The agent is stopping: the target is let go, and the caller hears why.
    func abandon() {
        let upstream = self.upstream
        self.upstream = nil
        guard let downstream = end() else { return }
        upstream?.cancel()
        downstream.exchangeFailed(.agentStopped)
    }

    /// The answer is complete (or failed): forgets the downstream and returns it, if the
    /// exchange was still running. The upstream stays, for request body that may still
    /// follow an early answer; it lets go of this exchange itself when it finishes.
    fileprivate func end() -> (any ExchangeDownstream)? {
        let downstream = self.downstream
        self.downstream = nil
        target.finished(self)
        return downstream
    }

    func sendBody(_ body: ByteBuffer) { upstream?.sendBody(body) }
    func sendEnd(trailers: HTTPHeaders?) { upstream?.sendEnd(trailers: trailers) }

    func cancel() {
        let upstream = self.upstream
        self.upstream = nil
        _ = end()
        upstream?.cancel()
    }

    func downstreamWritabilityChanged() { upstream?.downstreamWritabilityChanged() }
    var canTakeRequestBody: Bool { upstream?.canTakeRequestBody ?? false }

    // MARK: ExchangeDownstream: the real target's answer, on its way back

    func exchangeReceivedHead(_ head: ProxyResponseHead) { downstream?.exchangeReceivedHead(head) }
    func exchangeReceivedBody(_ body: ByteBuffer) { downstream?.exchangeReceivedBody(body) }
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { end()?.exchangeReceivedEnd(trailers: trailers) }
    func exchangeFailed(_ error: ExchangeError) { end()?.exchangeFailed(error) }
    func exchangeUpstreamWritabilityChanged() { downstream?.exchangeUpstreamWritabilityChanged() }
    var canTakeResponseBody: Bool { downstream?.canTakeResponseBody ?? true }
    /// Passed on, as every layer between the two sides does (see the requirement): the
    /// inspector's capture is inside this one today, but a layer put outside it would
    /// otherwise never hear it.
    func exchangeRequestDelivered() { downstream?.exchangeRequestDelivered() }
}
