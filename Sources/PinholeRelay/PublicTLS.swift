import NIOCore
import PinholeTLS

/// TLS on the public side (`--public-tls`). The client picks HTTP/2 or HTTP/1.1 by ALPN;
/// behind TLS the connection is then told apart by its first bytes as in plain text
/// (an `h2` client starts with the preface), so a client without ALPN works too.
public enum PublicTLS {
    /// Offered in this order: a client that can do both gets HTTP/2.
    public static let alpn = ["h2", "http/1.1"]

    /// The handler to put first on each public connection, or nothing without TLS.
    public static func first(_ context: TLSContext?) -> (@Sendable (any Channel) throws -> Void)? {
        guard let context else { return nil }
        return { channel in try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context)) }
    }
}
