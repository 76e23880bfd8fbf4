import NIOCore

/// An address block in CIDR notation (`10.0.0.0/8`, `fe80::/10`; a bare address is a
/// block of one). IPv4-mapped IPv6 clients are matched as their IPv4 address.
public struct AddressRange: Sendable, Equatable, CustomStringConvertible {
    /// The block's first address: 4 bytes (IPv4) or 16 (IPv6), host bits cleared.
    private let network: [UInt8]
    public let prefixLength: Int

    /// Parses `ADDRESS/BITS` or `ADDRESS`; the error says what is wrong in words.
    public init(parsing text: String) throws(ClientAllowList.ParseError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = Self.bytes(ofAddress: String(parts[0])) else {
            throw .init(text: text, problem: "not an IP address, or ADDRESS/BITS")
        }
        let bits = address.count * 8
        var length = bits
        if parts.count == 2 {
            guard let given = Int(parts[1]), (0...bits).contains(given), parts[1].allSatisfy(\.isNumber) else {
                throw .init(text: text, problem: "the prefix length must be a number from 0 to \(bits)")
            }
            length = given
        }
        prefixLength = length
        network = Self.masked(address, prefixLength: length)
    }

    public var description: String {
        let address: String
        if network.count == 4 {
            address = network.map(String.init).joined(separator: ".")
        } else {
            address = (try? SocketAddress(packedIPAddress: ByteBuffer(bytes: network), port: 0).ipAddress) ?? "?"
        }
        return "\(address)/\(prefixLength)"
    }

    /// Whether `address` lies in this block.
    public func contains(_ address: SocketAddress) -> Bool {
        guard let bytes = Self.bytes(of: address), bytes.count == network.count else { return false }
        return Self.masked(bytes, prefixLength: prefixLength) == network
    }

    private static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let kept = min(max(prefixLength - index * 8, 0), 8)
            return kept == 8 ? byte : byte & ~(UInt8(0xFF) >> kept)
        }
    }

    private static func bytes(ofAddress text: String) -> [UInt8]? {
        // The brackets of a URL's IPv6 host are a common slip; the zone of a link-local
        // address (fe80::1%eth0) names no block.
        let bare = text.hasPrefix("[") && text.hasSuffix("]") ? String(text.dropFirst().dropLast()) : text
        guard !bare.contains("%"), let address = try? SocketAddress(ipAddress: bare, port: 0) else { return nil }
        return bytes(of: address)
    }

    /// An address's bytes, IPv4-mapped IPv6 as IPv4; nil for a Unix socket.
    static func bytes(of address: SocketAddress) -> [UInt8]? {
        switch address {
        case .v4(let v4):
            return withUnsafeBytes(of: v4.address.sin_addr) { Array($0) }
        case .v6(let v6):
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            return mapped ? Array(bytes[12..<16]) : bytes
        case .unixDomainSocket:
            return nil
        }
    }
}

/// Who may reach the agent's embedded relay (`--allow`). Without it, anyone who can
/// reach this machine's port could call the app under the debugger: a laptop's port
/// is open to its whole LAN (a café's, an office's). The default is loopback and the
/// private ranges a cluster's pods, a VM or a container network use.
public struct ClientAllowList: Sendable, Equatable, CustomStringConvertible {
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public let text: String
        public let problem: String

        public var description: String { "'\(text)': \(problem)" }
    }

    public let ranges: [AddressRange]

    public init(_ ranges: [AddressRange]) {
        self.ranges = ranges
    }

    /// Parses each of `texts` as an `AddressRange`.
    public init(parsing texts: [String]) throws(ParseError) {
        var ranges: [AddressRange] = []
        for text in texts { ranges.append(try AddressRange(parsing: text)) }
        self.init(ranges)
    }

    /// Loopback, RFC 1918, IPv6 unique-local and link-local.
    public static let loopbackAndPrivate: ClientAllowList = {
        let blocks = [
            "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10",
        ]
        // These literals parse; a failure here is a typo in this list.
        return try! ClientAllowList(parsing: blocks)
    }()

    /// Whether a client at `address` may send requests. A Unix socket's client is on
    /// this machine.
    public func allows(_ address: SocketAddress?) -> Bool {
        guard let address, AddressRange.bytes(of: address) != nil else { return true }
        return ranges.contains { $0.contains(address) }
    }

    public var description: String {
        self == Self.loopbackAndPrivate
            ? "loopback and private networks (\(ranges.map(\.description).joined(separator: ", ")))"
            : ranges.map(\.description).joined(separator: ", ")
    }
}
