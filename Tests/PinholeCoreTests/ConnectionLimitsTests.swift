import NIOCore
import Testing

@testable import PinholeCore

@Suite("Caps on open connections, in all and per address")
struct ConnectionLimitsTests {
    private func group(_ ip: String) throws -> AddressGroup {
        AddressGroup(try SocketAddress(ipAddress: ip, port: 1234))
    }

    private let limits = ConnectionLimits(
        caps: .init(total: 5, perAddress: 2), totalFlag: "--max-connections",
        perAddressFlag: "--max-connections-per-address")

    @Test("an address over its cap is refused, naming the cap and its flag; others still get in")
    func perAddress() throws {
        let first = try group("192.0.2.1")
        #expect(throws: Never.self) { try limits.admit(first).get() }
        #expect(throws: Never.self) { try limits.admit(first).get() }
        guard case .failure(let refused) = limits.admit(first) else {
            Issue.record("a third connection from one address was admitted")
            return
        }
        #expect(refused.limit == .perAddress(2, first))
        #expect(
            refused.description == "connection refused: already 2 connections from 192.0.2.1"
                + " (--max-connections-per-address)")
        #expect(throws: Never.self) { try limits.admit(group("192.0.2.2")).get() }
        #expect(limits.open == 3)
    }

    @Test("the total cap holds across addresses; a released place is free again")
    func total() throws {
        for last in 1...5 { _ = limits.admit(try group("198.51.100.\(last)")) }
        guard case .failure(let refused) = limits.admit(try group("198.51.100.6")) else {
            Issue.record("a sixth connection was admitted")
            return
        }
        #expect(refused.limit == .total(5))
        #expect(refused.flag == "--max-connections")
        limits.release(try group("198.51.100.3"))
        #expect(limits.open(from: try group("198.51.100.3")) == 0)
        #expect(throws: Never.self) { try limits.admit(group("198.51.100.6")).get() }
    }

    @Test("an IPv6 /64 is one address: cycling through its addresses gains nothing")
    func ipv6() throws {
        _ = limits.admit(try group("2001:db8::1"))
        _ = limits.admit(try group("2001:db8::2"))
        guard case .failure = limits.admit(try group("2001:db8::ffff:3")) else {
            Issue.record("a third address of one /64 was admitted")
            return
        }
        #expect(throws: Never.self) { try limits.admit(group("2001:db8:0:1::1")).get() }
    }
}
