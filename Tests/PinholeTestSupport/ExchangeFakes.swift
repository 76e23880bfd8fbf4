import NIOCore
import NIOHTTP1
import PinholeCore

// Stand-ins for both ends of an exchange, for tests of what lies between them.

/// The side that asked (a public connection, a tunnel stream), reduced to what it is told.
public final class RecordingDownstream: ExchangeDownstream {
    public init() {}

    public var head: ProxyResponseHead?
    public var body = ByteBuffer()
    public var ended = false
    public var trailers: HTTPHeaders?
    public var failure: ExchangeError?
    public var writable = true

    public var canTakeResponseBody: Bool { writable }
    public var bodyText: String { String(buffer: body) }

    public func exchangeReceivedHead(_ head: ProxyResponseHead) { self.head = head }
    public func exchangeReceivedBody(_ body: ByteBuffer) {
        var body = body
        self.body.writeBuffer(&body)
    }
    public func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        ended = true
        self.trailers = trailers
    }
    public func exchangeFailed(_ error: ExchangeError) { failure = error }
    public func exchangeUpstreamWritabilityChanged() {}
}

/// The side that answers (the app behind the agent): records each exchange it is
/// given, and answers only when a test tells it to, through the exchange's downstream.
public final class ScriptedTarget: ExchangeTarget, @unchecked Sendable {
    // @unchecked: used only on embedded event loops, which run on the test's thread.
    public init() {}

    public var refusal: ExchangeError?
    public private(set) var exchanges: [ScriptedExchange] = []

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        if let refusal { throw refusal }
        let exchange = ScriptedExchange(head: head, downstream: downstream)
        exchanges.append(exchange)
        return exchange
    }
}

public final class ScriptedExchange: ExchangeUpstream {
    public let head: ProxyRequestHead
    public private(set) var downstream: (any ExchangeDownstream)?
    public var body = ByteBuffer()
    public var ended = false
    public var trailers: HTTPHeaders?
    public var cancelled = false
    public var canTakeRequestBody = true

    public init(head: ProxyRequestHead, downstream: any ExchangeDownstream) {
        self.head = head
        self.downstream = downstream
    }

    public func sendBody(_ body: ByteBuffer) {
        var body = body
        self.body.writeBuffer(&body)
    }
    public func sendEnd(trailers: HTTPHeaders?) {
        ended = true
        self.trailers = trailers
    }
    public func cancel() {
        cancelled = true
        downstream = nil
    }
    public func downstreamWritabilityChanged() {}

    /// Answers with `status`, `body` and `trailers`, all at once.
    public func answer(_ status: HTTPResponseStatus, body text: String = "", trailers: HTTPHeaders? = nil) {
        downstream?.exchangeReceivedHead(ProxyResponseHead(status: status, headers: ["content-type": "text/plain"]))
        if !text.isEmpty { downstream?.exchangeReceivedBody(ByteBuffer(string: text)) }
        downstream?.exchangeReceivedEnd(trailers: trailers)
    }
}
