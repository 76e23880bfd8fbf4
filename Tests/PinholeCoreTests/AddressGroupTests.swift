import NIOCore
import Testing

@testable import PinholeCore

@Suite("Address groups: IPv4 by address, IPv6 by /64")
struct AddressGroupTests {
    private func group(_ ip: String) throws -> AddressGroup {
        AddressGroup(try SocketAddress(ipAddress: ip, port: 1234))
    }

    @Test("IPv4 addresses are their own group, loopback included")
    func ipv4() throws {
        #expect(try group("192.0.2.7") == group("192.0.2.7"))
        #expect(try group("192.0.2.7") != group("192.0.2.8"))
        #expect(try group("127.0.0.1").description == "127.0.0.1")
    }

    @Test("IPv6 addresses in one /64 are one group; IPv4-mapped ones are their IPv4 address")
    func ipv6() throws {
        #expect(try group("2001:db8:1:2::1") == group("2001:db8:1:2:ffff:eeee:dddd:cccc"))
        #expect(try group("2001:db8:1:2::1") != group("2001:db8:1:3::1"))
        #expect(try group("2001:db8:1:2::1").description == "2001:db8:1:2::/64")
        #expect(try group("::ffff:192.0.2.7") == group("192.0.2.7"))
    }
}
