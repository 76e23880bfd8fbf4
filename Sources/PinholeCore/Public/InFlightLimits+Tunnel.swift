// Kept apart from InFlightLimits.swift so the parsers' fuzz target, which compiles that
// file without the exchange types, still builds.

extension InFlightLimits {
    /// What `target`'s per-tunnel cap counts by: a tunnel is a class, and its identity
    /// is the tunnel's. Other targets (structs) have none, and count per address only.
    public static func tunnel(of target: any ExchangeTarget) -> ObjectIdentifier? {
        type(of: target as Any) is AnyClass ? ObjectIdentifier(target as AnyObject) : nil
    }
}
