import NIOCore
import NIOHTTP1
import PinholeCore

/// The upstream of an exchange whose real upstream does not exist yet (the agent is
/// still connecting to an h2c app). It holds up to `pendingLimit` bytes of request
/// body, then reports itself unwritable, and hands everything over on `attach`.
final class DeferredUpstream: ExchangeUpstream {
    let head: ProxyRequestHead
    private(set) var downstream: (any ExchangeDownstream)?
    private var upstream: (any ExchangeUpstream)?
    private var pending: [ByteBuffer] = []
    private var pendingBytes = 0
    /// `.some` once the request ended: its trailers, if any.
    private var end: HTTPHeaders??
    private(set) var isCancelled = false

    static let pendingLimit = 64 * 1024

    init(head: ProxyRequestHead, downstream: any ExchangeDownstream) {
        self.head = head
        self.downstream = downstream
    }

    var canTakeRequestBody: Bool { upstream?.canTakeRequestBody ?? (pendingBytes < Self.pendingLimit) }

    func sendBody(_ body: ByteBuffer) {
        if let upstream {
            upstream.sendBody(body)
        } else if !isCancelled {
            pending.append(body)
            pendingBytes += body.readableBytes
        }
    }

    func sendEnd(trailers: HTTPHeaders?) {
        if let upstream {
            upstream.sendEnd(trailers: trailers)
        } else {
            end = .some(trailers)
        }
    }

    func cancel() {
        isCancelled = true
        downstream = nil
        pending.removeAll()
        upstream?.cancel()
        upstream = nil
    }

    func downstreamWritabilityChanged() {
        upstream?.downstreamWritabilityChanged()
    }

    /// The real upstream is there: what was held goes to it, in order.
    func attach(_ real: any ExchangeUpstream) {
        guard !isCancelled else {
            real.cancel()
            return
        }
        let wasWritable = canTakeRequestBody
        upstream = real
        for body in pending { real.sendBody(body) }
        pending.removeAll()
        pendingBytes = 0
        if let end { real.sendEnd(trailers: end) }
        if !wasWritable, real.canTakeRequestBody { downstream?.exchangeUpstreamWritabilityChanged() }
        downstream = nil
    }

    /// No real upstream will come: the downstream hears why.
    func fail(_ error: ExchangeError) {
        guard !isCancelled, let downstream else { return }
        self.downstream = nil
        downstream.exchangeFailed(error)
    }
}
