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

    /// The request log's line for this exchange, answered with `status`, ending now.
    func record(status: Int) -> ExchangeRecord {
        ExchangeRecord(request: head, status: status, startedAt: startedAt)
    }
}
