import NIOCore
import NIOHTTP1

/// One request to the target: the upstream half of an exchange, as its downstream
/// holds it. It keeps the request's data (head, trailers, downstream); where the
/// request stands is the business of the connection carrying it, which the pool sets.
final class TargetExchange: ExchangeUpstream {
    let head: ProxyRequestHead
    let target: TargetAddress
    /// Cleared once the outcome is passed on, which breaks the cycle with the
    /// downstream (it holds this exchange as its upstream).
    private(set) var downstream: (any ExchangeDownstream)?
    /// The connection carrying (or opening for) this request, set by the pool.
    var connection: TargetConnection?
    /// The request's trailers, once its end has come.
    private(set) var trailers: HTTPHeaders?

    init(head: ProxyRequestHead, downstream: any ExchangeDownstream, target: TargetAddress) {
        self.head = head
        self.downstream = downstream
        self.target = target
    }

    /// Once the exchange is over, body that still comes is dropped: take it freely.
    var canTakeRequestBody: Bool { connection?.isWritable(for: self) ?? true }

    func sendBody(_ body: ByteBuffer) {
        connection?.sendBody(body, of: self)
    }

    func sendEnd(trailers: HTTPHeaders?) {
        guard let connection else { return }
        self.trailers = trailers
        connection.sendEnd(of: self)
    }

    func cancel() {
        let connection = self.connection
        finish()
        connection?.cancel(self)
    }

    func downstreamWritabilityChanged() {
        connection?.downstreamWritabilityChanged(of: self)
    }

    // MARK: Called by the connection

    /// The outcome has been passed on: this exchange holds nothing any more.
    func finish() {
        downstream = nil
        connection = nil
    }

    func end(trailers: HTTPHeaders?) {
        let downstream = self.downstream
        finish()
        downstream?.exchangeReceivedEnd(trailers: trailers)
    }

    func fail(_ failure: TargetConnectionStateMachine.Failure) {
        let error: ExchangeError
        switch failure {
        case .unreachable(let reason):
            error = .targetUnreachable(target: target.description, reason: reason)
        case .closedBeforeResponse:
            error = .targetClosedWithoutAnswer(target: target.description)
        case .closedDuringResponse:
            error = .targetClosedEarly(target: target.description)
        case .invalidResponse(let syntax):
            error = .protocolViolation("\(target) sent \(syntax.description)")
        }
        let downstream = self.downstream
        finish()
        downstream?.exchangeFailed(error)
    }
}
