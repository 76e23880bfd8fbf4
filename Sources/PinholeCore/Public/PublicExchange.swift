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

extension HTTP1MessageWriter {
    /// Gathers the plain-text answer for a request that nothing upstream will answer,
    /// marked `Connection: close`.
    mutating func answer(_ error: ExchangeError, version: HTTPVersion, emit: (ByteBuffer) -> Void) {
        let body = error.body
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: ExchangeError.bodyContentType)
        headers.add(name: "content-length", value: String(body.readableBytes))
        head(status: error.status, version: version, headers: headers, hasBody: true, connection: "close")
        self.body(body, emit: emit)
        end(trailers: nil)
    }
}
