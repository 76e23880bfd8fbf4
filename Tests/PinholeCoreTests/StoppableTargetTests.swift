import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import PinholeCore

@Suite("Stopping: requests in flight are answered, new ones refused")
struct StoppableTargetTests {
    private static let head = ProxyRequestHead(
        method: .GET, path: "/", authority: "app.test", scheme: "http", headers: HTTPHeaders(), mayHaveBody: false)

    @Test("stop() answers the exchange in flight with 503 'the agent stopped', lets the target go, and counts it")
    func stopAnswersInFlight() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let silent = SilentTarget()
        let target = StoppableTarget(silent)
        let inFlight = Recorder()
        let answered = Recorder()
        try await loop.submit {
            _ = try target.startExchange(Self.head, downstream: inFlight, on: loop)
            _ = try target.startExchange(Self.head, downstream: answered, on: loop)
            // The second is answered in full before the stop.
            silent.upstreams[1].downstream.exchangeReceivedHead(ProxyResponseHead(status: .ok))
            silent.upstreams[1].downstream.exchangeReceivedEnd(trailers: nil)
        }.get()

        #expect(await target.stop() == 1)
        try await loop.submit {
            #expect(inFlight.failures == [.agentStopped])
            #expect(answered.failures.isEmpty && answered.ended)
            #expect(silent.upstreams[0].cancelled && !silent.upstreams[1].cancelled)
            #expect(throws: ExchangeError.agentStopped) {
                try target.startExchange(Self.head, downstream: Recorder(), on: loop)
            }
        }.get()
    }
}

extension StoppableTargetTests {
    @Test("the request's delivery to the app passes through to the caller's side")
    func deliveryPassesThrough() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let silent = SilentTarget()
        let target = StoppableTarget(silent)
        let caller = Recorder()
        try await loop.submit {
            _ = try target.startExchange(Self.head, downstream: caller, on: loop)
            silent.upstreams[0].downstream.exchangeRequestDelivered()
            #expect(caller.delivered == 1)
        }.get()
    }
}

/// A target that never answers by itself; the test answers through its upstreams.
// @unchecked: used only on the test's one event loop, inside `submit`.
private final class SilentTarget: ExchangeTarget, @unchecked Sendable {
    final class Upstream: ExchangeUpstream {
        let downstream: any ExchangeDownstream
        var cancelled = false
        init(_ downstream: any ExchangeDownstream) { self.downstream = downstream }
        func sendBody(_ body: ByteBuffer) {}
        func sendEnd(trailers: HTTPHeaders?) {}
        func cancel() { cancelled = true }
        func downstreamWritabilityChanged() {}
        var canTakeRequestBody: Bool { true }
    }

    var upstreams: [Upstream] = []

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        let upstream = Upstream(downstream)
        upstreams.append(upstream)
        return upstream
    }
}

// @unchecked: used only on the test's one event loop, inside `submit`.
private final class Recorder: ExchangeDownstream, @unchecked Sendable {
    var failures: [ExchangeError] = []
    var ended = false
    var delivered = 0
    func exchangeRequestDelivered() { delivered += 1 }
    func exchangeReceivedHead(_ head: ProxyResponseHead) {}
    func exchangeReceivedBody(_ body: ByteBuffer) {}
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { ended = true }
    func exchangeFailed(_ error: ExchangeError) { failures.append(error) }
    func exchangeUpstreamWritabilityChanged() {}
    var canTakeResponseBody: Bool { true }
}
