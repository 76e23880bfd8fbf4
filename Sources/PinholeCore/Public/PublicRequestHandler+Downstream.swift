import NIOCore
import NIOHTTP1

// MARK: The downstream of the exchange

extension PublicRequestHandler: ExchangeDownstream {
    public var canTakeResponseBody: Bool { context?.channel.isWritable ?? false }

    public func exchangeReceivedHead(_ head: ProxyResponseHead) {
        let hasBody = current.map { head.hasBody(for: $0.head) } ?? false
        if current != nil {
            current?.stopWaiting(watch)
            if hasBody { current?.expectedBytesOut = head.headers.first(name: "content-length").flatMap { Int($0) } }
        }
        perform(machine.responseHeadReceived(head, hasBody: hasBody))
    }

    public func exchangeReceivedBody(_ body: ByteBuffer) {
        perform(machine.responseBodyReceived(body))
    }

    public func exchangeReceivedEnd(trailers: HTTPHeaders?) {
        perform(machine.responseEndReceived(trailers: trailers))
    }

    public func exchangeFailed(_ error: ExchangeError) {
        perform(machine.exchangeFailed(error))
    }

    public func exchangeUpstreamWritabilityChanged() {
        resumeReadingIfHeld()
    }
}
