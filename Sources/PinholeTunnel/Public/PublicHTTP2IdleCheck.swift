import NIOCore
import PinholeHTTP2

/// Whether a public HTTP/2 connection has carried nothing for a whole check interval.
/// Checked every `idleTimeout`, it is closed after between one and two intervals of
/// idleness: never sooner than the HTTP/1.1 side would be, so a sidecar's idle
/// upstream connection (kept an hour by Envoy) is not closed under it.
struct PublicHTTP2IdleCheck {
    private var openedSinceCheck = 0

    mutating func streamOpened() {
        openedSinceCheck += 1
    }

    /// The interval is over: true when the connection should close (GOAWAY, then close).
    mutating func intervalEnded(activeStreams: Int) -> Bool {
        defer { openedSinceCheck = 0 }
        return activeStreams == 0 && openedSinceCheck == 0
    }
}

/// Runs `PublicHTTP2IdleCheck` for one connection on its event loop.
final class PublicHTTP2IdleWatch {
    private var check = PublicHTTP2IdleCheck()
    private var task: RepeatedTask?

    func streamOpened() {
        check.streamOpened()
    }

    /// Starts checking `connection` every `interval`, until `channel` closes.
    func start(connection: HTTP2Connection, channel: any Channel, interval: TimeAmount) {
        let bound = NIOLoopBound((self, connection), eventLoop: channel.eventLoop)
        task = channel.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let (watch, connection) = bound.value
            if watch.check.intervalEnded(activeStreams: connection.activeStreamCount) {
                watch.stop()
                connection.goAwayAndClose(code: .noError, debugData: "idle")
            }
        }
        let watch = NIOLoopBound(self, eventLoop: channel.eventLoop)
        channel.closeFuture.whenComplete { _ in watch.value.stop() }
    }

    func stop() {
        task?.cancel()
        task = nil
    }
}

@available(*, unavailable)
extension PublicHTTP2IdleWatch: Sendable {}
