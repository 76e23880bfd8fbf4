import NIOCore

/// When a public connection closes after an error answer, which ends it without a
/// reset. The client may still be sending a body nobody will read; closing with unread
/// bytes would send a reset, which can destroy the answer before the client reads it.
/// So our side ends first (FIN), what still arrives is read and dropped, and the
/// connection closes when the client ends its side, after `quiet` without a byte, or
/// `limit` after the answer, whichever comes first.
///
/// Bookkeeping only: `PublicConnectionStateMachine` holds it while closing, and
/// `PublicRequestHandler` owns the timer and the close.
struct LingeringClose: Equatable {
    /// How long a closing connection waits for the client's next byte, and how long
    /// it reads at most (the client is sending a body nobody will use).
    static let quiet = TimeAmount.seconds(2)
    static let limit = TimeAmount.seconds(30)

    let deadline: NIODeadline

    /// Starts the clock, once the answer is written.
    init(answerWrittenAt now: NIODeadline) {
        deadline = now + Self.limit
    }

    /// How long to wait from `now` (the answer written, or the client's latest bytes)
    /// before closing: `quiet`, up to the deadline.
    func closeDelay(now: NIODeadline) -> TimeAmount {
        min(Self.quiet, deadline - now)
    }
}
