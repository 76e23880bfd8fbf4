import NIOCore

/// Ends a public connection after an error answer without a reset. The client may
/// still be sending a body nobody will read; closing with unread bytes would send a
/// reset, which can destroy the answer before the client reads it. So our side ends
/// first (FIN), what still arrives is read and dropped, and the connection closes when
/// the client ends its side, after `quiet` without a byte, or `limit` after the
/// answer, whichever comes first.
struct LingeringClose {
    /// How long a closing connection waits for the client's next byte, and how long
    /// it reads at most (the client is sending a body nobody will use).
    static let quiet = TimeAmount.seconds(2)
    static let limit = TimeAmount.seconds(30)

    private var deadline: NIODeadline?
    private var timer: Scheduled<Void>?

    /// Starts the clock, once the answer is written; then `endOutput`.
    mutating func begin(_ context: ChannelHandlerContext) {
        deadline = context.eventLoop.now + Self.limit
        rearm(context)
    }

    /// Ends our side of the connection. Not part of `begin`: closing can call back into
    /// the handler, which must not happen while this struct is being mutated.
    static func endOutput(_ context: ChannelHandlerContext) {
        let outputClosed = context.eventLoop.makePromise(of: Void.self)
        outputClosed.futureResult.assumeIsolated().whenComplete { result in
            // A channel that cannot half-close (or already closed) closes outright.
            if case .failure = result { context.close(promise: nil) }
        }
        context.close(mode: .output, promise: outputClosed)
    }

    /// The client sent more: wait `quiet` again, up to the deadline. Nothing before `begin`.
    mutating func rearm(_ context: ChannelHandlerContext) {
        guard let deadline else { return }
        timer?.cancel()
        let delay = min(Self.quiet, deadline - context.eventLoop.now)
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { context.close(promise: nil) }
    }

    mutating func cancel() {
        timer?.cancel()
        timer = nil
    }
}
