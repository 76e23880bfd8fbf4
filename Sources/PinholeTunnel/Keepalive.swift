import NIOCore
import PinholeCore
import PinholeHTTP2

/// HTTP/2 PINGs on an idle-or-busy tunnel. A PING that is not answered within one
/// interval means the peer (or the path to it) is gone, so a dead connection is
/// noticed within about two intervals; the channel is then closed with `onDead`'s reason.
public final class TunnelKeepalive {
    private let connection: HTTP2Connection
    private let interval: TimeAmount
    private var task: RepeatedTask?
    private var outstanding = false
    private let onDead: (String) -> Void

    public init(connection: HTTP2Connection, interval: TimeAmount, onDead: @escaping (String) -> Void) {
        self.connection = connection
        self.interval = interval
        self.onDead = onDead
    }

    public func start() {
        let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
        task = connection.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            bound.value.tick()
        }
    }

    /// Starts, and stops once `channel` (the tunnel's, on the connection's loop) closes.
    public func start(until channel: any Channel) {
        start()
        let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
        channel.closeFuture.whenComplete { _ in bound.value.stop() }
    }

    public func stop() {
        task?.cancel()
        task = nil
    }

    private func tick() {
        if outstanding {
            stop()
            let seconds = Double(interval.nanoseconds) / 1e9
            onDead("no answer to a keepalive PING within \(seconds) s")
            return
        }
        outstanding = true
        let bound = NIOLoopBound(self, eventLoop: connection.eventLoop)
        connection.ping().whenComplete { _ in
            bound.value.outstanding = false
        }
    }
}

@available(*, unavailable)
extension TunnelKeepalive: Sendable {}
