import NIOCore
import PinholeCore
import PinholeHTTP2

/// An agent's tunnel, as the relay's public side sees it: requests become HTTP/2
/// streams on the agent's connection, hopping to that connection's event loop when
/// the public connection runs on another one.
///
/// A class, not a struct: routing returns it as `any ExchangeTarget` for every request,
/// and a struct of this size would be boxed (one allocation) each time.
public final class TunnelTarget: ExchangeTarget {
    public let eventLoop: any EventLoop
    private let connection: NIOLoopBound<HTTP2Connection>

    /// Must be created on `connection.eventLoop`.
    public init(connection: HTTP2Connection) {
        self.eventLoop = connection.eventLoop
        self.connection = NIOLoopBound(connection, eventLoop: connection.eventLoop)
    }

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on downstreamLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        if downstreamLoop === eventLoop {
            return try TunnelStreamUpstream.start(head, downstream: downstream, connection: connection.value)
        }
        let connection = self.connection
        return startBridged(head, downstream: downstream, downstreamLoop: downstreamLoop, upstreamLoop: eventLoop) {
            head, near throws(ExchangeError) in
            try TunnelStreamUpstream.start(head, downstream: near, connection: connection.value)
        }
    }
}
