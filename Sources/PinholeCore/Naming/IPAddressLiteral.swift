import NIOCore

/// IP address literals, as they appear in hosts and certificate names.
public enum IPAddressLiteral {
    /// Whether `text` is an IPv4 or IPv6 address as written: no brackets, no port.
    public static func isValid(_ text: String) -> Bool {
        (try? SocketAddress(ipAddress: text, port: 0)) != nil
    }
}
