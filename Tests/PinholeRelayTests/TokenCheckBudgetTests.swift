import NIOCore
import PinholeCore
import Testing

@testable import PinholeRelay

@Suite("Token check budget: per address group, refilled over time, bounded")
struct TokenCheckBudgetTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    private func group(_ ip: String) throws -> AddressGroup { AddressGroup(try SocketAddress(ipAddress: ip, port: 1)) }

    @Test("at most 10 checks in any 5 s from one group, by default")
    func tenInFiveSeconds() throws {
        let budget = TokenCheckBudget(policy: .init(checksPer5Seconds: 10))
        let address = try group("192.0.2.1")
        var checked = 0
        // One attempt every 10 ms for 5 s, both ends included: 501 attempts.
        for step in 0...500 {
            if budget.reserve(for: address, now: start + .milliseconds(Int64(step * 10))) == .check { checked += 1 }
        }
        #expect(checked == 10)
        guard case .wait(let wait) = budget.reserve(for: address, now: start + .milliseconds(5_500)) else {
            Issue.record("expected a wait")
            return
        }
        #expect(wait > .zero && wait <= .seconds(1))
    }

    @Test("IPv6 addresses in one /64 share a budget; another group has its own")
    func groupsShare() throws {
        let budget = TokenCheckBudget(policy: .init(burst: 2, refillInterval: .seconds(1)))
        #expect(budget.reserve(for: try group("2001:db8::1"), now: start) == .check)
        #expect(budget.reserve(for: try group("2001:db8::2"), now: start) == .check)
        #expect(budget.reserve(for: try group("2001:db8::3"), now: start) != .check)
        #expect(budget.reserve(for: try group("2001:db8:0:1::1"), now: start) == .check)
    }

    @Test("a valid token's check is given back, so agents sharing an address are not charged")
    func refund() throws {
        let budget = TokenCheckBudget(policy: .init(burst: 1, refillInterval: .seconds(60)))
        let address = try group("192.0.2.9")
        for _ in 0..<100 {
            #expect(budget.reserve(for: address, now: start) == .check)
            budget.refund(for: address)
        }
    }

    @Test("the table never holds more than its capacity")
    func bounded() throws {
        let budget = TokenCheckBudget(policy: .init(burst: 1, refillInterval: .seconds(1), capacity: 100))
        for index in 0..<1_000 {
            _ = budget.reserve(for: try group("10.0.\(index / 256).\(index % 256)"), now: start)
        }
        #expect(budget.trackedGroups == 100)
        // The most recent ones are still remembered.
        #expect(budget.reserve(for: try group("10.0.3.231"), now: start) != .check)
    }
}
