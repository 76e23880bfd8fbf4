import NIOCore

/// What keeps one public client from taking a tunnel's share from the others: caps on
/// requests in flight, and a limit on how long a client may stall. Shared by every
/// connection of a relay (the caps count across them).
public struct PublicLimits: Sendable {
    /// Requests in flight per address group and per tunnel; nil for no caps (the
    /// embedded relay, whose one app is the developer's own).
    public var inFlight: InFlightLimits?
    /// How long a client may be the side not moving, sending none of its request body
    /// or reading none of its answer, before it is cut off (`--stall-timeout`); nil
    /// for never. A client waiting on the app (a breakpoint) is never cut.
    public var stallTimeout: TimeAmount?

    public init(inFlight: InFlightLimits? = nil, stallTimeout: TimeAmount? = nil) {
        self.inFlight = inFlight
        self.stallTimeout = stallTimeout
    }

    public static let defaultStallTimeout = TimeAmount.seconds(60)
}
