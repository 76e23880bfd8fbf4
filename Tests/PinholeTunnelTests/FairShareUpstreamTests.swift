import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import PinholeTestSupport
import Testing

@testable import PinholeTunnel

/// `FairShareTarget` between a recording stream side and a scripted tunnel, on an
/// embedded loop: places taken and given back, the line, and the stall timeout.
@Suite("Public HTTP/2 streams through their fair share")
struct FairShareUpstreamTests {
    private let loop = EmbeddedEventLoop()
    private let tunnel = ScriptedTarget()
    private let client = AddressGroup(nil)

    private func head(_ method: HTTPMethod = .GET, body: Bool = false) -> ProxyRequestHead {
        var head = ProxyRequestHead(method: method, path: "/", authority: "demo", scheme: "http", headers: [:])
        head.mayHaveBody = body
        return head
    }

    private func target(_ limits: PublicLimits) -> FairShareTarget {
        FairShareTarget(inner: tunnel, limits: limits, client: client)
    }

    private func caps(perAddress: Int, wait: Int64 = 5) -> InFlightLimits {
        InFlightLimits(caps: .init(perAddress: perAddress, perTunnel: 1024, waitLimit: .seconds(wait)))
    }

    @Test("over the cap a stream waits with its body held, and starts when a place frees up")
    func waitsThenStarts() throws {
        let inFlight = caps(perAddress: 1)
        let limits = PublicLimits(inFlight: inFlight)
        let first = RecordingDownstream()
        // The stream's responder holds its upstream while the stream lives; so do these tests.
        let running = try target(limits).startExchange(head(), downstream: first, on: loop)
        #expect(tunnel.exchanges.count == 1)

        let second = RecordingDownstream()
        let waiting = try target(limits).startExchange(head(.POST, body: true), downstream: second, on: loop)
        #expect(tunnel.exchanges.count == 1)
        #expect(!waiting.canTakeRequestBody, "a stream in line gets no window back")
        waiting.sendBody(ByteBuffer(string: "held"))
        waiting.sendEnd(trailers: nil)
        loop.advanceTime(by: .seconds(4))
        #expect(second.failure == nil)

        tunnel.exchanges[0].answer(.ok, body: "one")
        #expect(first.bodyText == "one" && first.ended)
        loop.run()
        #expect(tunnel.exchanges.count == 2)
        #expect(String(buffer: tunnel.exchanges[1].body) == "held" && tunnel.exchanges[1].ended)
        #expect(waiting.canTakeRequestBody)
        loop.advanceTime(by: .seconds(10))
        #expect(second.failure == nil, "the wait's deadline was cancelled")
        tunnel.exchanges[1].answer(.ok)
        #expect(inFlight.inFlight(from: client) == 0)
        withExtendedLifetime(running) {}
    }

    @Test("a stream still in line at the wait limit gets 503 naming the cap, and leaves the line")
    func waitLimit() throws {
        let inFlight = caps(perAddress: 1, wait: 2)
        let limits = PublicLimits(inFlight: inFlight)
        let running = try target(limits).startExchange(head(), downstream: RecordingDownstream(), on: loop)
        let refused = RecordingDownstream()
        let waiting = try target(limits).startExchange(head(), downstream: refused, on: loop)
        loop.advanceTime(by: .seconds(2))
        let failure = try #require(refused.failure)
        #expect(failure.status.code == 503 && failure.message.contains("--max-in-flight-per-address"))
        #expect(failure.grpcStatus == GRPCStatus.resourceExhausted)
        tunnel.exchanges[0].answer(.ok)
        loop.run()
        #expect(tunnel.exchanges.count == 1, "the place went to no one")
        #expect(inFlight.inFlight(from: client) == 0)
        withExtendedLifetime((running, waiting)) {}
    }

    @Test("a client reset while in line leaves the line; one mid-exchange cancels it and frees the place")
    func resets() throws {
        let inFlight = caps(perAddress: 1)
        let limits = PublicLimits(inFlight: inFlight)
        let running = try target(limits).startExchange(head(), downstream: RecordingDownstream(), on: loop)
        let waiting = try target(limits).startExchange(head(), downstream: RecordingDownstream(), on: loop)
        waiting.cancel()
        running.cancel()
        #expect(tunnel.exchanges[0].cancelled)
        loop.run()
        #expect(tunnel.exchanges.count == 1)
        #expect(inFlight.inFlight(from: client) == 0)
        let next = try target(limits).startExchange(head(), downstream: RecordingDownstream(), on: loop)
        #expect(tunnel.exchanges.count == 2)
        withExtendedLifetime(next) {}
    }

    @Test("a target that refuses at once gives the place back and the stream hears why")
    func refusal() throws {
        let inFlight = caps(perAddress: 1)
        tunnel.refusal = .agentNotConnected(host: "demo")
        #expect(throws: ExchangeError.agentNotConnected(host: "demo")) {
            _ = try target(PublicLimits(inFlight: inFlight)).startExchange(
                head(), downstream: RecordingDownstream(), on: loop)
        }
        #expect(inFlight.inFlight(from: client) == 0)
    }

    @Test("a place dropped with its stream, with no end seen, is given back")
    func droppedWithoutEnd() throws {
        let inFlight = caps(perAddress: 1)
        var upstream: (any ExchangeUpstream)? = try target(PublicLimits(inFlight: inFlight)).startExchange(
            head(), downstream: RecordingDownstream(), on: loop)
        #expect(inFlight.inFlight(from: client) == 1)
        // The stream closed after its answer was complete, as the responder sees it.
        upstream = nil
        #expect(upstream == nil && inFlight.inFlight(from: client) == 0)
        #expect(tunnel.exchanges[0].cancelled, "the exchange does not go on without its place")
    }

    @Test("an app that stops taking the body without saying so (an HTTP/2 stream) stops the upload clock")
    func silentlyFullApp() throws {
        let limits = PublicLimits(inFlight: caps(perAddress: 4), stallTimeout: .seconds(3))
        let client = RecordingDownstream()
        let upload = try target(limits).startExchange(head(.POST, body: true), downstream: client, on: loop)
        // The app's side fills up with this piece; the stream stops granting window.
        tunnel.exchanges[0].canTakeRequestBody = false
        upload.sendBody(ByteBuffer(string: "a"))
        loop.advanceTime(by: .seconds(30))
        #expect(client.failure == nil, "the client cannot send while the app takes nothing")
        #expect(!tunnel.exchanges[0].cancelled)
    }

    @Test("an upload the client stalls is cut off with 408 and cancelled upstream; a paused app is not")
    func uploadStall() throws {
        let inFlight = caps(perAddress: 4)
        let limits = PublicLimits(inFlight: inFlight, stallTimeout: .seconds(3))
        let stalled = RecordingDownstream()
        let upload = try target(limits).startExchange(head(.POST, body: true), downstream: stalled, on: loop)
        loop.advanceTime(by: .seconds(2))
        upload.sendBody(ByteBuffer(string: "a"))
        loop.advanceTime(by: .seconds(2))
        #expect(stalled.failure == nil, "the client moved 2 s ago")

        let paused = RecordingDownstream()
        let held = try target(limits).startExchange(head(.POST, body: true), downstream: paused, on: loop)
        tunnel.exchanges[1].canTakeRequestBody = false
        tunnel.exchanges[1].downstream?.exchangeUpstreamWritabilityChanged()

        loop.advanceTime(by: .seconds(1))
        let failure = try #require(stalled.failure)
        #expect(failure.status.code == 408 && failure.message.contains("--stall-timeout"))
        #expect(tunnel.exchanges[0].cancelled)
        loop.advanceTime(by: .seconds(30))
        #expect(paused.failure == nil, "an app that takes no body stops the clock")
        #expect(inFlight.inFlight(from: client) == 1)
        withExtendedLifetime((upload, held)) {}
    }

    @Test("an exchange that holds its downstream weakly (a bridged one, across loops) still answers the stream")
    func weaklyHeldDownstream() throws {
        let inFlight = caps(perAddress: 1)
        let bridged = WeakHoldingTarget()
        let stream = RecordingDownstream()
        let upstream = try FairShareTarget(inner: bridged, limits: PublicLimits(inFlight: inFlight), client: client)
            .startExchange(head(), downstream: stream, on: loop)
        bridged.downstream?.exchangeReceivedHead(ProxyResponseHead(status: .ok, headers: [:]))
        bridged.downstream?.exchangeReceivedEnd(trailers: nil)
        #expect(stream.head?.status == .ok && stream.ended)
        #expect(inFlight.inFlight(from: client) == 0)
        withExtendedLifetime(upstream) {}
    }

    @Test("a download the client does not read is cut off; one it reads is not")
    func downloadStall() throws {
        let limits = PublicLimits(stallTimeout: .seconds(3))
        let reader = RecordingDownstream()
        let download = try target(limits).startExchange(head(), downstream: reader, on: loop)
        let exchange = tunnel.exchanges[0]
        exchange.downstream?.exchangeReceivedHead(ProxyResponseHead(status: .ok, headers: [:]))
        reader.writable = false
        exchange.downstream?.exchangeReceivedBody(ByteBuffer(string: "chunk"))
        loop.advanceTime(by: .seconds(2))
        reader.writable = true
        download.downstreamWritabilityChanged()
        loop.advanceTime(by: .seconds(2))
        #expect(reader.failure == nil)
        reader.writable = false
        exchange.downstream?.exchangeReceivedBody(ByteBuffer(string: "chunk"))
        loop.advanceTime(by: .seconds(3))
        let failure = try #require(reader.failure)
        #expect(failure == .clientStalled(seconds: 3, reading: true))
        #expect(exchange.cancelled)
        withExtendedLifetime(download) {}
    }
}

/// Holds its exchange's downstream weakly, as `startBridged` does.
private final class WeakHoldingTarget: ExchangeTarget, ExchangeUpstream, @unchecked Sendable {
    // @unchecked: used only on an embedded event loop, on the test's thread.
    weak var downstream: (any ExchangeDownstream)?
    var canTakeRequestBody: Bool { true }

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        self.downstream = downstream
        return self
    }

    func sendBody(_ body: ByteBuffer) {}
    func sendEnd(trailers: HTTPHeaders?) {}
    func cancel() {}
    func downstreamWritabilityChanged() {}
}
