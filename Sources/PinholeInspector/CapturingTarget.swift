import NIOCore
import NIOHTTP1
import PinholeCore

/// Wraps the agent's target so each exchange is recorded on its way through. Nothing
/// waits for the inspector: the exchange streams on, and only the first bytes of each
/// body (up to the store's limit) are copied aside.
public struct CapturingTarget: ExchangeTarget {
    public let inner: any ExchangeTarget
    let store: InspectorStore
    let deadlines: DeadlineWatch

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        try start(head, downstream: downstream, on: eventLoop, replayOf: nil)
    }

    func start(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop, replayOf: Int?
    ) throws(ExchangeError) -> CapturingExchange {
        let deadline = CallerDeadline(headers: head.headers)
        let capture = CapturingExchange(
            head, replayOf: replayOf, deadline: deadline, store: store, downstream: downstream)
        do throws(ExchangeError) {
            capture.upstream = try inner.startExchange(head, downstream: capture, on: eventLoop)
        } catch {
            // The caller hears of it from the throw, not from its downstream.
            capture.failedToStart(error)
            throw error
        }
        if let deadline {
            capture.watch(deadline, on: eventLoop, watch: deadlines, method: head.method.rawValue, path: head.path)
        }
        return capture
    }
}

/// One exchange, seen from between its downstream and upstream: every call is passed
/// on unchanged, after a note of it. The downstream talks to it as its upstream, and the
/// target answers it as its downstream: one object both ways, as the two protocols'
/// writability questions have names of their own. Lives on the exchange's event loop,
/// and goes with it. While it runs, the store holds its `slot`, which it changes without
/// looking it up; when it ends, the store writes the record into the ring, and lets the
/// slot go.
final class CapturingExchange: ExchangeUpstream, ExchangeDownstream {
    let id: Int
    private let slot: InspectorStore.Slot
    private let store: InspectorStore
    private let bodyLimit: Int
    /// Cleared when the exchange is over, as the sides it joins clear theirs.
    private var downstream: (any ExchangeDownstream)?
    var upstream: (any ExchangeUpstream)?
    private var timing: CapturedTiming
    private var requestBody = CapturedBody()
    private var responseBody = CapturedBody()
    private var over = false
    private var deadlineTimer: Scheduled<Void>?

    /// Starts the record of `head` in `store`, at the current time.
    init(
        _ head: ProxyRequestHead, replayOf: Int?, deadline: CallerDeadline?, store: InspectorStore,
        downstream: any ExchangeDownstream
    ) {
        let started = NIODeadline.now()
        self.slot = InspectorStore.Slot(
            CapturedRequest(
                id: 0, head: head, replayOf: replayOf, wallClock: store.wallClock(at: started), started: started,
                deadline: deadline))
        self.id = store.begin(slot, replayOf: replayOf)
        self.store = store
        self.bodyLimit = store.limits.bodyBytes
        self.downstream = downstream
        self.timing = CapturedTiming(started: started)
    }

    // MARK: ExchangeUpstream: the downstream's calls, on their way to the target

    var canTakeRequestBody: Bool { upstream?.canTakeRequestBody ?? true }

    func sendBody(_ body: ByteBuffer) {
        // Body that follows the record's end (an early answer, a 413) is not kept: the
        // record is in the ring by then, and the sides are let go (`end`).
        if !over { requestBody.keep(body, limit: bodyLimit) }
        upstream?.sendBody(body)
    }

    func sendEnd(trailers: HTTPHeaders?) {
        timing.requestEnded = .now()
        // A request held at the app shows its body and trailers at once; one without
        // either has nothing new to show until its response.
        if requestBody.totalBytes > 0 || trailers != nil {
            let (body, timing) = (requestBody, self.timing)
            update {
                $0.requestBody = body
                $0.requestTrailers = trailers
                $0.timing = timing
            }
        }
        upstream?.sendEnd(trailers: trailers)
    }

    func cancel() {
        let upstream = self.upstream
        end(state: .failed, error: "the client went away before the response was complete", trailers: nil)
        upstream?.cancel()
    }

    func downstreamWritabilityChanged() {
        upstream?.downstreamWritabilityChanged()
    }

    // MARK: ExchangeDownstream: the target's answers, on their way back

    var canTakeResponseBody: Bool { downstream?.canTakeResponseBody ?? true }

    func exchangeRequestDelivered() {
        timing.delivered = .now()
    }

    func exchangeReceivedHead(_ head: ProxyResponseHead) {
        deadlineTimer?.cancel()
        let now = NIODeadline.now()
        timing.responseStarted = now
        let timing = self.timing
        update {
            $0.status = Int(head.status.code)
            $0.responseHeaders = head.headers
            $0.state = .responding
            $0.timing = timing
        }
        downstream?.exchangeReceivedHead(head)
    }

    func exchangeReceivedBody(_ body: ByteBuffer) {
        if !over { responseBody.keep(body, limit: bodyLimit) }
        downstream?.exchangeReceivedBody(body)
    }

    func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        let downstream = self.downstream
        end(state: .complete, error: nil, trailers: trailers)
        downstream?.exchangeReceivedEnd(trailers: trailers)
    }

    func exchangeFailed(_ error: ExchangeError) {
        let downstream = self.downstream
        end(state: .failed, error: error.description, trailers: nil, status: Int(error.status.code))
        downstream?.exchangeFailed(error)
    }

    func failedToStart(_ error: ExchangeError) {
        end(state: .failed, error: error.description, trailers: nil, status: Int(error.status.code))
    }

    func exchangeUpstreamWritabilityChanged() {
        downstream?.exchangeUpstreamWritabilityChanged()
    }

    // MARK: The record

    /// Changes the record while the exchange runs. After its end, as when the app answered
    /// before reading the body, the record is in the ring and nothing changes.
    private func update(_ change: (inout CapturedRequest) -> Void) {
        guard !over else { return }
        store.update(slot, id: id, change)
    }

    private func end(state: CapturedRequest.State, error: String?, trailers: HTTPHeaders?, status: Int? = nil) {
        guard !over else { return }
        over = true
        deadlineTimer?.cancel()
        deadlineTimer = nil
        downstream = nil
        upstream = nil
        timing.finished = .now()
        // The bodies go to the record, and from there to the ring: none is held after
        // (see `InspectorStore.Slot`).
        let (timing, requestBody, responseBody) = (self.timing, self.requestBody, self.responseBody)
        self.requestBody = CapturedBody()
        self.responseBody = CapturedBody()
        store.finish(slot, id: id) {
            $0.state = state
            $0.error = error
            $0.timing = timing
            $0.requestBody = requestBody
            $0.responseBody = responseBody
            $0.responseTrailers = trailers
            // A failure before any response head: the status Pinhole answered with.
            if $0.status == nil, let status { $0.status = status }
        }
    }

    /// Tells `watch` if the request is still without an answer when its caller's
    /// deadline passes: the caller has given up by then.
    func watch(
        _ deadline: CallerDeadline, on eventLoop: any EventLoop, watch: DeadlineWatch, method: String, path: String
    ) {
        let id = self.id
        deadlineTimer = eventLoop.assumeIsolated().scheduleTask(in: deadline.timeout) {
            guard !self.over, self.timing.responseStarted == nil else { return }
            watch.report(DeadlineNotice(id: id, method: method, path: path, deadline: deadline))
            self.update { $0.deadlinePassed = true }
        }
    }
}
