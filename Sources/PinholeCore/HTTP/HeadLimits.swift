/// How large a head may be: one limit from the public port to the agent, so a head the
/// public side accepts is never refused further on (which the client would see as the
/// tunnel failing, 502, instead of 431).
///
/// Heads are counted the way HTTP/2 counts a header list (RFC 9113 §6.5.2): each
/// field's name and value plus 32 bytes, pseudo-headers included. The tunnel's
/// `HTTP2Configuration.maxHeaderListSize` must be at least this (a test checks), and a
/// public side in any protocol checks its heads against it.
public enum HeadLimits {
    public static let maximumHeaderListSize = 64 * 1024

    /// What one field adds to a header list's size.
    @inlinable
    public static func fieldSize(name: String, value: String) -> Int {
        name.utf8.count + value.utf8.count + 32
    }
}

extension ProxyRequestHead {
    /// The size of the header list this request travels as: its pseudo-headers
    /// (`:method`, `:scheme`, `:authority`, `:path`), its fields, and the field naming a
    /// protocol switch.
    public var headerListSize: Int {
        var size =
            HeadLimits.fieldSize(name: ":method", value: method.rawValue)
            + HeadLimits.fieldSize(name: ":scheme", value: scheme)
            + HeadLimits.fieldSize(name: ":authority", value: authority)
            + HeadLimits.fieldSize(name: ":path", value: path)
        for (name, value) in headers { size += HeadLimits.fieldSize(name: name, value: value) }
        if let upgrade { size += HeadLimits.fieldSize(name: TunnelUpgrade.requestField, value: upgrade) }
        return size
    }
}
