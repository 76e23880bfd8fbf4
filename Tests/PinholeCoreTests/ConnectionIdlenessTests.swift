import NIOCore
import Testing

@testable import PinholeCore

@Suite("When a public connection counts as idle too long")
struct ConnectionIdlenessTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    @Test("before its first request, a quiet connection has the first-request limit")
    func firstRequestLimit() {
        var idleness = ConnectionIdleness(firstRequestLimit: .seconds(30), limit: .minutes(65))
        idleness.note(busy: false, now: at(0))
        #expect(idleness.verdict(now: at(29_000)) == .lookAgain(in: .seconds(1)))
        #expect(idleness.verdict(now: at(30_000)) == .expired)
    }

    @Test("a request in flight is never idle; idleness counts from its end")
    func busyThenIdle() {
        var idleness = ConnectionIdleness(firstRequestLimit: .seconds(30), limit: .seconds(100))
        idleness.note(busy: false, now: at(0))
        idleness.requestStarted()
        #expect(idleness.verdict(now: at(10_000_000)) == .lookAgain(in: .seconds(30)), "look every 30 s while busy")
        idleness.note(busy: false, now: at(10_000_000))
        idleness.note(busy: false, now: at(10_050_000))
        #expect(
            idleness.verdict(now: at(10_060_000)) == .lookAgain(in: .seconds(40)),
            "a second idle note keeps the first start")
        #expect(idleness.verdict(now: at(10_100_000)) == .expired)
        idleness.restart(now: at(10_100_000))
        #expect(idleness.verdict(now: at(10_100_000)) == .lookAgain(in: .seconds(100)))
    }

    @Test("no limit, or a limit of zero, means a used connection is never closed for idleness")
    func noLimit() {
        for limit in [nil, TimeAmount.zero, .seconds(-1)] {
            var idleness = ConnectionIdleness(firstRequestLimit: .seconds(30), limit: limit)
            idleness.requestStarted()
            idleness.note(busy: false, now: at(0))
            #expect(idleness.verdict(now: at(100_000_000)) == .unlimited)
            #expect(idleness.checkInterval == .seconds(30))
        }
    }

    @Test("looks come at least every 10 ms, and at the shorter of the two limits")
    func checkInterval() {
        #expect(ConnectionIdleness(firstRequestLimit: .seconds(30), limit: .seconds(1)).checkInterval == .seconds(1))
        #expect(
            ConnectionIdleness(firstRequestLimit: .nanoseconds(1), limit: .nanoseconds(1)).checkInterval
                == .milliseconds(10))
    }
}
