import NIOCore
import NIOHTTP1
import PinholeCore

/// Routes as `inner` does, for one public HTTP/2 connection from `client`; every exchange
/// then goes through a `FairShareUpstream`. Wrapping the router keeps the limits out of
/// `AgentStreamResponder`, which sees an ordinary target.
struct FairShareRouter: PublicRouter {
    let inner: any PublicRouter
    let limits: PublicLimits
    let client: AddressGroup

    func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
        FairShareTarget(inner: try inner.target(forHost: host, localPort: localPort), limits: limits, client: client)
    }
}

struct FairShareTarget: ExchangeTarget {
    let inner: any ExchangeTarget
    let limits: PublicLimits
    let client: AddressGroup

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        let share = FairShareUpstream(
            head: head, target: inner, downstream: downstream, limits: limits, client: client, loop: eventLoop)
        try share.begin()
        return share
    }
}

/// The upstream a public HTTP/2 stream sees: it takes a place for the exchange (see
/// `FairShareStateMachine`), holds the request body while the stream waits in line
/// (`DeferredUpstream`), then passes everything between the stream and the real
/// exchange, watching who moves. Confined to the stream's event loop.
final class FairShareUpstream: ExchangeUpstream {
    private var machine: FairShareStateMachine
    private let head: ProxyRequestHead
    private let target: any ExchangeTarget
    private let limits: PublicLimits
    private let client: AddressGroup
    private let loop: any EventLoop
    /// The stream's responder, until the exchange is over.
    fileprivate var downstream: (any ExchangeDownstream)?
    /// The body's holder while in line, then the real exchange.
    private var upstream: (any ExchangeUpstream)?
    /// What the real exchange (and the body's holder) talk to. Held here: a bridged
    /// exchange (`startBridged`) holds its downstream only weakly.
    private lazy var listener = FairShareDownstream(self)
    private var waitDeadline: Scheduled<Void>?
    private var stallCheck: Scheduled<Void>?

    init(
        head: ProxyRequestHead, target: any ExchangeTarget, downstream: any ExchangeDownstream, limits: PublicLimits,
        client: AddressGroup, loop: any EventLoop
    ) {
        self.machine = FairShareStateMachine(
            stallTimeout: limits.stallTimeout, requestBody: .init(head))
        self.head = head
        self.target = target
        self.downstream = downstream
        self.limits = limits
        self.client = client
        self.loop = loop
    }

    deinit {
        // The stream closed with the exchange still holding its place (its end never
        // came through here): the place must not be lost with it.
        // So must the exchange, which would go on without a place (the stream can end
        // on a bodiless head before the exchange's own end arrives).
        if case .running(let running) = machine.state {
            running.slot.map { limits.inFlight?.release($0) }
            upstream?.cancel()
        }
        waitDeadline?.cancel()
        stallCheck?.cancel()
    }

    /// Takes a place, or a place in line. Throws what the stream should answer at once.
    func begin() throws(ExchangeError) {
        guard let inFlight = limits.inFlight else {
            return try startAtOnce(machine.admitted(nil, now: loop.now))
        }
        let loop = self.loop
        let share = NIOLoopBound(self, eventLoop: loop)
        let admission = inFlight.admit(
            address: client, tunnel: target.tunnelIdentity(for: head),
            wake: { slot in loop.execute { share.value.placeCame(slot) } })
        switch admission {
        case .admitted(let slot):
            try startAtOnce(machine.admitted(slot, now: loop.now))
        case .waiting(let ticket, let limit):
            upstream = DeferredUpstream(head: head, downstream: listener)
            perform(machine.queued(ticket, limit: limit, wait: inFlight.caps.waitLimit))
        case .refused(let limit):
            if case .refuse(let error) = machine.refused(limit) { throw error }
        }
    }

    private func startAtOnce(_ action: FairShareStateMachine.Action) throws(ExchangeError) {
        guard case .startExchange = action else { return perform(action) }
        try startExchange()
    }

    /// A place freed up while this stream waited in line.
    private func placeCame(_ slot: InFlightLimits.Slot) {
        let action = machine.admitted(slot, now: loop.now)
        if case .startExchange = action {
            waitDeadline?.cancel()
            waitDeadline = nil
        }
        perform(action)
        // While in line the stream was told it could not send: now it may.
        if !machine.isWaiting, upstream?.canTakeRequestBody ?? false {
            downstream?.exchangeUpstreamWritabilityChanged()
        }
    }

    private func startExchange() throws(ExchangeError) {
        let real: any ExchangeUpstream
        do {
            real = try target.startExchange(head, downstream: listener, on: loop)
        } catch {
            (upstream as? DeferredUpstream)?.cancel()
            upstream = nil
            // The caller answers with `error` (`begin` by throwing it).
            if case .finished(let slot?) = machine.startFailed() { limits.inFlight?.release(slot) }
            throw error
        }
        let held = upstream as? DeferredUpstream
        upstream = real
        held?.attach(real)
        perform(machine.exchangeStarted(appTakesMore: real.canTakeRequestBody, now: loop.now))
    }

    private func perform(_ action: FairShareStateMachine.Action) {
        switch action {
        case .none:
            break
        case .startExchange:
            do {
                try startExchange()
            } catch {
                endHere(cancelUpstream: false, answer: error)
            }
        case .waitInLine(let deadlineIn):
            waitDeadline = loop.assumeIsolated().scheduleTask(in: deadlineIn) { [weak self] in
                guard let self else { return }
                self.perform(self.machine.waitEnded())
            }
        case .refuse(let error):
            endHere(cancelUpstream: false, answer: error)
        case .leaveLine(let ticket):
            limits.inFlight?.cancel(ticket)
            endHere(cancelUpstream: true)
        case .giveUp(let ticket, let error):
            limits.inFlight?.cancel(ticket)
            endHere(cancelUpstream: true, answer: error)
        case .release(let slot):
            limits.inFlight?.release(slot)
        case .finished(let slot):
            slot.map { limits.inFlight?.release($0) }
            endHere(cancelUpstream: false)
        case .cancelExchange(let slot):
            slot.map { limits.inFlight?.release($0) }
            endHere(cancelUpstream: true)
        case .cutOff(let slot, let error):
            slot.map { limits.inFlight?.release($0) }
            endHere(cancelUpstream: true, answer: error)
        case .checkStall(let delay):
            scheduleStallCheck(in: delay)
        }
    }

    /// The exchange is over for this side: clocks stop, and the stream hears `answer`.
    private func endHere(cancelUpstream: Bool, answer: ExchangeError? = nil) {
        waitDeadline?.cancel()
        waitDeadline = nil
        stallCheck?.cancel()
        stallCheck = nil
        if cancelUpstream {
            upstream?.cancel()
            upstream = nil
        }
        let downstream = self.downstream
        self.downstream = nil
        if let answer { downstream?.exchangeFailed(answer) }
    }

    private func scheduleStallCheck(in delay: TimeAmount) {
        stallCheck = loop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            guard let self else { return }
            self.perform(self.machine.stallCheckDue(now: self.loop.now))
        }
    }

    // MARK: ExchangeUpstream (called by the stream)

    /// While in line, the stream returns no window: what it holds is one window at most.
    var canTakeRequestBody: Bool { machine.isWaiting ? false : (upstream?.canTakeRequestBody ?? true) }

    func sendBody(_ body: ByteBuffer) {
        perform(machine.requestBodyArrived(now: loop.now))
        upstream?.sendBody(body)
        // Upstreams report turning writable again, not turning unwritable (an HTTP/2
        // stream's producer is expected to ask): asked here, a body the app stops taking
        // (a breakpoint) stops the upload clock, as it should.
        if !machine.isWaiting, let upstream, !upstream.canTakeRequestBody {
            perform(machine.appWritabilityChanged(takesMore: false, now: loop.now))
        }
    }

    func sendEnd(trailers: HTTPHeaders?) {
        machine.requestEnded()
        upstream?.sendEnd(trailers: trailers)
    }

    func cancel() {
        perform(machine.clientWentAway())
    }

    func downstreamWritabilityChanged() {
        if let downstream {
            perform(machine.downloadWritability(clientReads: downstream.canTakeResponseBody, now: loop.now))
        }
        upstream?.downstreamWritabilityChanged()
    }

    // MARK: From the real exchange (through `FairShareDownstream`)

    fileprivate func receivedHead(_ head: ProxyResponseHead) {
        machine.responseHeadArrived(final: head.status.code >= 200)
        downstream?.exchangeReceivedHead(head)
    }

    fileprivate func receivedBody(_ body: ByteBuffer) {
        guard let downstream else { return }
        downstream.exchangeReceivedBody(body)
        perform(machine.downloadWritability(clientReads: downstream.canTakeResponseBody, now: loop.now))
    }

    fileprivate func ended(_ tell: (any ExchangeDownstream) -> Void) {
        if let downstream { tell(downstream) }
        perform(machine.exchangeEnded())
    }

    fileprivate func upstreamWritabilityChanged() {
        // A DeferredUpstream's own notices while in line mean nothing to the stream.
        guard !machine.isWaiting, let upstream else { return }
        perform(machine.appWritabilityChanged(takesMore: upstream.canTakeRequestBody, now: loop.now))
        downstream?.exchangeUpstreamWritabilityChanged()
    }
}

@available(*, unavailable)
extension FairShareUpstream: Sendable {}

/// The downstream the real exchange sees: everything goes on to the stream through the
/// `FairShareUpstream`, which watches. It holds the share weakly, so the real exchange
/// does not keep the share alive after its stream closed.
private final class FairShareDownstream: ExchangeDownstream {
    private weak var share: FairShareUpstream?

    init(_ share: FairShareUpstream) {
        self.share = share
    }

    var canTakeResponseBody: Bool { share?.downstream?.canTakeResponseBody ?? true }

    func exchangeReceivedHead(_ head: ProxyResponseHead) { share?.receivedHead(head) }
    func exchangeReceivedBody(_ body: ByteBuffer) { share?.receivedBody(body) }
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { share?.ended { $0.exchangeReceivedEnd(trailers: trailers) } }
    func exchangeFailed(_ error: ExchangeError) { share?.ended { $0.exchangeFailed(error) } }
    func exchangeUpstreamWritabilityChanged() { share?.upstreamWritabilityChanged() }
    func exchangeRequestDelivered() {
        share?.downstream?.exchangeRequestDelivered()
    }
}
