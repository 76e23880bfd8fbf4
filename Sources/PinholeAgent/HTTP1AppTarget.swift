import NIOCore
import PinholeCore

/// An app the agent speaks HTTP/1.1 to. A gRPC call cannot reach it (an HTTP/1.1 app
/// has no trailers for its status, and a gRPC server does not speak HTTP/1.1), so such
/// calls are refused with the flag that fixes it instead of failing somewhere inside.
struct HTTP1AppTarget: ExchangeTarget {
    let client: TargetClient

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        if head.isGRPC {
            throw .http2Required(
                "the agent speaks HTTP/1.1 to \(client.address), which cannot carry a gRPC call; "
                    + "start it with --app-protocol h2c (or the target h2c://HOST:PORT)")
        }
        return try client.startExchange(head, downstream: downstream, on: eventLoop)
    }
}
