import NIOCore
import Testing

@testable import PinholeCore

@Suite("The embedded relay's --allow: address blocks in CIDR notation")
struct ClientAllowListTests {
    private func address(_ ip: String) throws -> SocketAddress {
        try SocketAddress(ipAddress: ip, port: 1234)
    }

    @Test("the default lets loopback and private networks in, and nobody else")
    func defaults() throws {
        let allow = ClientAllowList.loopbackAndPrivate
        for inside in [
            "127.0.0.1", "127.9.9.9", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.20",
            "fd12:3456::1", "fe80::1", "::ffff:10.0.0.7",
        ] {
            #expect(allow.allows(try address(inside)), "\(inside)")
        }
        for outside in ["8.8.8.8", "172.32.0.1", "192.169.0.1", "11.0.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            #expect(!allow.allows(try address(outside)), "\(outside)")
        }
        #expect(allow.allows(try SocketAddress(unixDomainSocketPath: "/tmp/x")))
    }

    @Test("blocks parse with or without a prefix length, and print with host bits cleared")
    func parsing() throws {
        #expect(try AddressRange(parsing: "10.1.2.3/8").description == "10.0.0.0/8")
        #expect(try AddressRange(parsing: "192.0.2.7").description == "192.0.2.7/32")
        #expect(try AddressRange(parsing: "2001:db8::1/32").description == "2001:db8::/32")
        #expect(try AddressRange(parsing: "[::1]").description == "::1/128")
        #expect(try AddressRange(parsing: "0.0.0.0/0").contains(address("203.0.113.9")))
        let odd = try AddressRange(parsing: "172.16.0.0/12")
        #expect(odd.contains(try address("172.20.1.1")))
        #expect(!odd.contains(try address("172.15.1.1")))
    }

    @Test("what is not a block is refused, saying why")
    func refusals() {
        #expect(
            throws: ClientAllowList.ParseError(
                text: "10.0.0.0/33", problem: "the prefix length must be a number from 0 to 32")
        ) {
            try AddressRange(parsing: "10.0.0.0/33")
        }
        for text in ["example.com", "10.0.0/8", "10.0.0.0/8/1", "fe80::1%eth0", "10.0.0.0/-1", "::/+5", ""] {
            #expect(throws: ClientAllowList.ParseError.self, "\(text)") { try AddressRange(parsing: text) }
        }
    }

    @Test("an IPv4 block does not match IPv6 clients, nor the reverse")
    func families() throws {
        let allow = try ClientAllowList(parsing: ["0.0.0.0/0"])
        #expect(allow.allows(try address("198.51.100.1")))
        #expect(!allow.allows(try address("2001:db8::1")))
    }
}
