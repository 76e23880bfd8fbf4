import NIOCore
import Testing

@testable import PinholeCore

@Suite("The stall clock's arithmetic")
struct StallClockTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let timeout = TimeAmount.seconds(60)

    @Test("no clock, a clock with time to go, and a client stalled for the whole timeout")
    func verdicts() {
        #expect(
            StallClock.verdict(uploadStalledSince: nil, downloadBlockedSince: nil, timeout: timeout, now: start)
                == .noClock)
        #expect(
            StallClock.verdict(
                uploadStalledSince: start, downloadBlockedSince: nil, timeout: timeout, now: start + .seconds(45))
                == .checkAgain(in: .seconds(15)))
        #expect(
            StallClock.verdict(
                uploadStalledSince: start, downloadBlockedSince: nil, timeout: timeout, now: start + .seconds(60))
                == .stalled(.clientStalled(seconds: 60, reading: false)))
    }

    @Test("the older moment counts, and says which way the client stopped")
    func olderMomentCounts() {
        let readingFirst = StallClock.verdict(
            uploadStalledSince: start + .seconds(30), downloadBlockedSince: start, timeout: timeout,
            now: start + .seconds(60))
        #expect(readingFirst == .stalled(.clientStalled(seconds: 60, reading: true)))
        let sendingFirst = StallClock.verdict(
            uploadStalledSince: start, downloadBlockedSince: start + .seconds(30), timeout: timeout,
            now: start + .seconds(59))
        #expect(sendingFirst == .checkAgain(in: .seconds(1)))
    }
}
