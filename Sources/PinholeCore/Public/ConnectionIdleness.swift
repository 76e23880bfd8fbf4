import NIOCore

/// When a public connection counts as idle, and when it has been idle too long: before
/// its first request it has `firstRequestLimit` (a client that connects and sends
/// nothing must not hold a socket for ever); once it has carried one, `limit` of
/// carrying none (nil: no limit). Bookkeeping only: `PublicRequestHandler` owns the
/// timer and the close.
///
/// The handler looks only when its timer fires, and sets the timer again only then,
/// so requests that come and go cost a clock read each, not a timer.
struct ConnectionIdleness {
    let firstRequestLimit: TimeAmount
    let limit: TimeAmount?
    private(set) var hasStartedRequest = false
    /// Since when nothing has been in flight or arriving; nil while something is.
    private var idleSince: NIODeadline?

    /// A `limit` of zero or less means none.
    init(firstRequestLimit: TimeAmount, limit: TimeAmount?) {
        self.firstRequestLimit = firstRequestLimit
        self.limit = limit.flatMap { $0 > .zero ? $0 : nil }
    }

    /// How often to look while a request is in flight, so that a look comes before the
    /// limit of the idleness that follows can run out.
    var checkInterval: TimeAmount {
        max(.milliseconds(10), min(firstRequestLimit, limit ?? firstRequestLimit))
    }

    mutating func requestStarted() {
        hasStartedRequest = true
        idleSince = nil
    }

    /// Notes whether a request is in flight or arriving; idleness starts at the first
    /// `busy: false` after a `busy: true`. The clock is read only then: this runs twice
    /// per request.
    mutating func note(busy: Bool, now: @autoclosure () -> NIODeadline) {
        if busy {
            idleSince = nil
        } else if idleSince == nil {
            idleSince = now()
        }
    }

    /// Counts idleness from `now` again (the last answer is still being sent).
    mutating func restart(now: NIODeadline) {
        idleSince = now
    }

    enum Verdict: Equatable {
        /// No limit applies any more.
        case unlimited
        case lookAgain(in: TimeAmount)
        case expired
    }

    func verdict(now: NIODeadline) -> Verdict {
        guard let limit = hasStartedRequest ? limit : firstRequestLimit else { return .unlimited }
        guard let idleSince else { return .lookAgain(in: checkInterval) }
        let left = idleSince + limit - now
        return left > .zero ? .lookAgain(in: min(left, self.limit ?? left)) : .expired
    }
}
