import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import PinholeTestSupport
import Testing

/// A target whose exchanges live on another loop, reached through the bridge.
private struct TargetOnAnotherLoop: ExchangeTarget {
    let app: ScriptedTarget
    let loop: EmbeddedEventLoop

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on downstreamLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        let app = self.app
        let upstreamLoop = loop
        return startBridged(head, downstream: downstream, downstreamLoop: downstreamLoop, upstreamLoop: upstreamLoop) {
            head, near throws(ExchangeError) in
            try app.startExchange(head, downstream: near, on: upstreamLoop)
        }
    }
}

@Suite("Exchange bridge: a downstream and an upstream on different event loops")
struct ExchangeBridgeTests {
    let near = EmbeddedEventLoop()  // the public connection's loop
    let far = EmbeddedEventLoop()  // the tunnel's loop
    let app = ScriptedTarget()

    private func run() {
        // Each hop is one task on the other loop; a few rounds let answers come back.
        for _ in 0..<4 {
            far.run()
            near.run()
        }
    }

    private var head: ProxyRequestHead {
        ProxyRequestHead(method: .POST, path: "/upload", authority: "demo", scheme: "http", headers: [:])
    }

    @Test("calls hop in order both ways: head, body pieces, end; then the answer")
    func inOrder() throws {
        let client = RecordingDownstream()
        let upstream = try TargetOnAnotherLoop(app: app, loop: far).startExchange(head, downstream: client, on: near)
        upstream.sendBody(ByteBuffer(string: "a"))
        upstream.sendBody(ByteBuffer(string: "b"))
        upstream.sendEnd(trailers: ["x-sum": "2"])
        #expect(app.exchanges.isEmpty, "nothing runs on the far loop until it turns")
        run()
        let exchange = try #require(app.exchanges.first)
        #expect(
            String(buffer: exchange.body) == "ab" && exchange.ended && exchange.trailers?.first(name: "x-sum") == "2")

        exchange.answer(.ok, body: "done", trailers: ["x-t": "1"])
        #expect(client.head == nil, "the answer waits for the near loop")
        run()
        #expect(client.head?.status == .ok && client.bodyText == "done" && client.ended)
        #expect(client.trailers?.first(name: "x-t") == "1")
    }

    @Test("a target that refuses on its loop fails the exchange on the near loop")
    func refusal() throws {
        app.refusal = .agentNotConnected(host: "demo")
        let client = RecordingDownstream()
        _ = try TargetOnAnotherLoop(app: app, loop: far).startExchange(head, downstream: client, on: near)
        run()
        guard case .agentNotConnected(let host) = client.failure else {
            Issue.record("expected agentNotConnected, got \(String(describing: client.failure))")
            return
        }
        #expect(host == "demo")
    }

    @Test("cancel crosses to the far side; nothing comes back after it")
    func cancel() throws {
        let client = RecordingDownstream()
        let upstream = try TargetOnAnotherLoop(app: app, loop: far).startExchange(head, downstream: client, on: near)
        run()
        let exchange = try #require(app.exchanges.first)
        upstream.cancel()
        run()
        #expect(exchange.cancelled)
        #expect(client.head == nil && client.failure == nil)
    }

    @Test("a fast client cannot queue an unbounded body on the far loop: the bridge turns unwritable")
    func boundedInFlight() throws {
        let client = RecordingDownstream()
        let upstream = try TargetOnAnotherLoop(app: app, loop: far).startExchange(head, downstream: client, on: near)
        var sent = 0
        while upstream.canTakeRequestBody, sent < 64 * 1024 * 1024 {
            upstream.sendBody(ByteBuffer(repeating: 0, count: 16 * 1024))
            sent += 16 * 1024
        }
        #expect(!upstream.canTakeRequestBody, "still writable after \(sent) bytes in flight")
        #expect(sent <= 1024 * 1024, "\(sent) bytes were queued before the bridge pushed back")
        run()
        #expect(app.exchanges.first?.body.readableBytes == sent)
        #expect(upstream.canTakeRequestBody, "writable again once the far side took them")
    }

    @Test("an answer the client stops taking is held on the far side: a silent unwritable turn is noticed")
    func boundedAnswer() throws {
        let client = RecordingDownstream()
        let upstream = try TargetOnAnotherLoop(app: app, loop: far).startExchange(head, downstream: client, on: near)
        run()
        let exchange = try #require(app.exchanges.first)
        let answerSide = try #require(exchange.downstream)
        answerSide.exchangeReceivedHead(ProxyResponseHead(status: .ok, headers: [:]))
        // The client's side turns unwritable without a word, as an HTTP/2 stream does
        // once its queue passes the high watermark.
        client.writable = false
        var sent = 0
        for _ in 0..<4096 where answerSide.canTakeResponseBody {
            answerSide.exchangeReceivedBody(ByteBuffer(repeating: 1, count: 16 * 1024))
            sent += 16 * 1024
            run()
        }
        #expect(!answerSide.canTakeResponseBody, "the far side still takes more after \(sent) bytes")
        #expect(sent <= 512 * 1024, "\(sent) bytes crossed to a client that took none")
        #expect(client.bodyText.utf8.count == sent, "everything sent arrived, in order")

        // The client reads again: the far side hears it, and may go on.
        client.writable = true
        upstream.downstreamWritabilityChanged()
        run()
        #expect(answerSide.canTakeResponseBody)
    }
}
