import NIOCore
import NIOHTTP1

/// A target whose responses carry extra fields (the agent's `x-pinhole-tunnel: NAME`),
/// whatever speaks to the app behind it: the caller, browser devtools and the inspector
/// can then see where a request was answered.
public struct ResponseMarkingTarget: ExchangeTarget {
    private let inner: any ExchangeTarget
    private let fields: [(name: String, value: String)]

    public init(_ inner: any ExchangeTarget, fields: [(name: String, value: String)]) {
        self.inner = inner
        self.fields = fields
    }

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        try inner.startExchange(head, downstream: MarkingDownstream(downstream, fields: fields), on: eventLoop)
    }
}

/// Passes everything on, adding the fields to the response head. It lives as long as
/// the upstream holds it, which ends with the exchange.
private final class MarkingDownstream: ExchangeDownstream {
    private let inner: any ExchangeDownstream
    private let fields: [(name: String, value: String)]

    init(_ inner: any ExchangeDownstream, fields: [(name: String, value: String)]) {
        self.inner = inner
        self.fields = fields
    }

    var canTakeResponseBody: Bool { inner.canTakeResponseBody }

    func exchangeReceivedHead(_ head: consuming ProxyResponseHead) {
        for field in fields { head.headers.replaceOrAppend(name: field.name, value: field.value) }
        inner.exchangeReceivedHead(head)
    }

    func exchangeReceivedBody(_ body: ByteBuffer) { inner.exchangeReceivedBody(body) }
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { inner.exchangeReceivedEnd(trailers: trailers) }
    func exchangeFailed(_ error: ExchangeError) { inner.exchangeFailed(error) }
    func exchangeUpstreamWritabilityChanged() { inner.exchangeUpstreamWritabilityChanged() }
    func exchangeRequestDelivered() { inner.exchangeRequestDelivered() }
}
