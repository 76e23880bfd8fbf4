import NIOCore
import NIOHTTP1

/// The request in flight on a public connection, as `PublicRequestHandler` tracks it.
struct PublicExchange {
    var head: ProxyRequestHead
    var version: HTTPVersion
    var upstream: (any ExchangeUpstream)?
    var keepAlive: Bool
    var requestEnded = false
    var responseStarted = false
    var status = 0
    var startedAt: NIODeadline
    var timeout: Scheduled<Void>?
}
