import NIOCore

/// `--stall-timeout`'s arithmetic, the same for a public HTTP/1.1 exchange and a public
/// HTTP/2 stream: given since when the client has not sent the body the app would take,
/// and since when it has not read the answer, whether it has been the side not moving
/// for the whole timeout. Which clocks run is each side's own affair.
public enum StallClock {
    public enum Verdict: Equatable, Sendable {
        /// Neither clock runs.
        case noClock
        /// A clock runs, and has this long to go.
        case checkAgain(in: TimeAmount)
        /// The client has not moved for `timeout`: the error to cut it off with.
        case stalled(ExchangeError)
    }

    /// The older of the two moments counts: that is when the client stopped moving.
    public static func verdict(
        uploadStalledSince: NIODeadline?, downloadBlockedSince: NIODeadline?, timeout: TimeAmount, now: NIODeadline
    ) -> Verdict {
        var stalledSince = uploadStalledSince
        var reading = false
        if let blocked = downloadBlockedSince, stalledSince.map({ blocked < $0 }) ?? true {
            stalledSince = blocked
            reading = true
        }
        guard let stalledSince else { return .noClock }
        let remaining = stalledSince + timeout - now
        guard remaining <= .zero else { return .checkAgain(in: remaining) }
        let seconds = Int(timeout.nanoseconds / 1_000_000_000)
        return .stalled(.clientStalled(seconds: seconds, reading: reading))
    }
}
