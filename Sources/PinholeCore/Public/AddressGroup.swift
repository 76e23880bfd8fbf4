import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What per-address limits count by: one IPv4 address, or one IPv6 /64, the block a
/// single host or home is given (so cycling through its addresses gains nothing). An
/// IPv4-mapped IPv6 address is its IPv4 address. Loopback is not exempt: on a relay
/// behind a local proxy, everyone is loopback, and the limits must still hold.
public struct AddressGroup: Hashable, Sendable, CustomStringConvertible {
    private enum Key: Hashable {
        case v4(UInt32)
        case v6(prefix: UInt64)
        case other
    }

    private let key: Key

    public init(_ address: SocketAddress?) {
        switch address {
        case .v4(let v4):
            key = .v4(UInt32(bigEndian: v4.address.sin_addr.s_addr))
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                key = .v4(bytes[12..<16].reduce(0) { $0 << 8 | UInt32($1) })
            } else {
                key = .v6(prefix: bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) })
            }
        default:
            // Unix sockets (tests, local proxies) count as one group.
            key = .other
        }
    }

    public var description: String {
        switch key {
        case .v4(let address):
            return (0..<4).map { String(address >> (24 - 8 * $0) & 0xFF) }.joined(separator: ".")
        case .v6(let prefix):
            let groups = (0..<4).map { String(prefix >> (48 - 16 * $0) & 0xFFFF, radix: 16) }
            return groups.joined(separator: ":") + "::/64"
        case .other:
            return "local"
        }
    }
}
