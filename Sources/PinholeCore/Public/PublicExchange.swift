import NIOCore

/// What `PublicRequestHandler` keeps of the request in flight: the objects and facts
/// its record needs. Its lifecycle is `PublicConnectionStateMachine`'s.
struct PublicExchange {
    /// The machine's number for it (see `PublicConnectionStateMachine.Exchange`).
    let number: Int
    let head: ProxyRequestHead
    /// Nil until the target has started the exchange.
    var upstream: (any ExchangeUpstream)?
    let startedAt: NIODeadline
    /// The target the router picked, kept while the request waits in line.
    var target: (any ExchangeTarget)?
    /// Its place among the requests in flight (see `InFlightLimits`), or its ticket in
    /// line for one.
    var slot: InFlightLimits.Slot?
    var ticket: InFlightLimits.Ticket?
    /// Request body bytes passed on, and response body bytes written.
    var bytesIn = 0
    var bytesOut = 0
    /// The response's Content-Length, to say how much of it a cut left out.
    var expectedBytesOut: Int?
    /// While the answer is awaited, and the request log watches for long waits.
    var waiting: RequestWatch.Ticket?
    var waitingID: Int?

    init(number: Int, head: ProxyRequestHead, startedAt: NIODeadline, watch: RequestWatch?) {
        self.number = number
        self.head = head
        self.startedAt = startedAt
        self.waiting = watch?.begin(method: head.method.rawValue, path: head.path, startedAt: startedAt)
    }

    /// The answer has begun (or the exchange ended): it no longer waits.
    mutating func stopWaiting(_ watch: RequestWatch?) {
        guard let ticket = waiting, let watch else { return }
        waiting = nil
        if let id = watch.end(ticket) { waitingID = id }
    }

    /// The request log's line for this exchange, answered with `status`, ending now.
    func record(status: Int, outcome: ExchangeRecord.Outcome) -> ExchangeRecord {
        ExchangeRecord(
            request: head, status: status, startedAt: startedAt, bytesIn: bytesIn, bytesOut: bytesOut,
            outcome: outcome, waitingID: waitingID)
    }
}
