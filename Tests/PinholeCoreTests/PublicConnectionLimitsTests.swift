import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

@Suite("Public connection state machine: caps on requests in flight, and stalled clients")
struct PublicConnectionLimitsTests {
    typealias Machine = PublicConnectionStateMachine
    typealias D = MachineDriver

    private let limit = InFlightLimits.Limit.perAddress(256, AddressGroup(nil))

    /// What a client that sent none of its body for `stalling()`'s 10 s gets: 408, and the
    /// connection closed.
    private let uploadStalledCut = Machine.Action.answerAndClose(
        .clientStalled(seconds: 10, reading: false), version: .http1_1, record: 408, cancelUpstream: true)

    private func stalling(_ timeout: TimeAmount = .seconds(10)) -> Machine {
        var machine = Machine(
            headTimeout: .seconds(30), idleTimeout: .minutes(65), requestTimeout: nil, stallTimeout: timeout)
        _ = machine.channelActive(now: D.start)
        return machine
    }

    @Test("a request over a cap waits in line without its body being read, then gets 503 naming the cap")
    func queuedThenRefused() {
        var machine = D.active()
        let number = D.head(&machine)
        #expect(
            machine.exchangeQueued(number: number, limit: limit, wait: .seconds(5))
                == .schedule(.queue, in: .seconds(5)))
        #expect(!machine.isReadyForRequestBytes, "its body waits in the socket")
        #expect(machine.readRequested(upstreamWritable: true, bufferedBytes: 0) == .none)
        let answer = machine.timerFired(.queue, now: D.at(5_000), unsentBytes: 0)
        guard case .answerAndClose(let error, _, let record, false) = answer else {
            Issue.record("expected an answer, got \(answer)")
            return
        }
        #expect(error == .tooManyInFlight(limit, waited: .seconds(5)) && record == 503)
        #expect(error.status == .serviceUnavailable)
        #expect(
            error.message.contains("256 requests in flight") && error.message.contains("--max-in-flight-per-address"))
    }

    @Test("a request let in from the line starts, and its queue timer no longer applies")
    func queuedThenAdmitted() {
        var machine = D.active()
        let number = D.head(&machine)
        _ = machine.exchangeQueued(number: number, limit: limit, wait: .seconds(5))
        _ = machine.readRequested(upstreamWritable: true, bufferedBytes: 0)
        #expect(machine.exchangeAdmitted(number: number) == .cancel(.queue))
        #expect(machine.exchangeAdmitted(number: number) == .none)
        #expect(machine.isReadyForRequestBytes)
        #expect(machine.exchangeStarted(number: number) == .exchangeUnderWay(sendContinue: false, requestTimeout: nil))
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: 0) == .read, "the held read goes")
        #expect(machine.timerFired(.queue, now: D.at(5_000), unsentBytes: 0) == .none)
    }

    @Test("a client that sends none of its body for --stall-timeout gets 408; one that sends some does not")
    func stalledUpload() {
        var machine = stalling()
        let number = D.head(&machine)
        #expect(
            machine.exchangeStarted(number: number, now: D.at(0))
                == .exchangeUnderWay(sendContinue: false, requestTimeout: nil, stallCheckIn: .seconds(10)))
        _ = machine.bytesReceived(ByteBuffer(string: "ab"), now: D.at(4_000))
        #expect(machine.timerFired(.stall, now: D.at(10_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(4)))
        #expect(machine.timerFired(.stall, now: D.at(14_000), unsentBytes: 0) == uploadStalledCut)
    }

    @Test("a body held back because the app does not read it (a breakpoint) never trips the stall timeout")
    func heldUploadIsNotStalled() {
        var machine = stalling()
        let number = D.head(&machine)
        _ = machine.exchangeStarted(number: number, now: D.at(0))
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 0) == .none)
        for minute in 1...60 {
            let check = machine.timerFired(.stall, now: D.at(Int64(minute) * 60_000), unsentBytes: 0)
            #expect(check == .schedule(.stall, in: .seconds(10)), "an hour at a breakpoint")
        }
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: 0, now: D.at(3_600_000)) == .read)
        #expect(machine.timerFired(.stall, now: D.at(3_605_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(5)))
        #expect(machine.timerFired(.stall, now: D.at(3_610_000), unsentBytes: 0) != .schedule(.stall, in: .seconds(10)))
    }

    @Test("a client that reads none of its answer for --stall-timeout is cut; an app that pauses mid-answer is not")
    func stalledDownload() {
        var machine = stalling()
        let number = D.request(&machine)
        _ = machine.exchangeStarted(number: number, now: D.at(0))
        _ = machine.responseHeadReceived(D.ok(["content-length": "1000000"]), hasBody: true)
        // The app pauses: nothing to write, the channel stays writable.
        #expect(machine.timerFired(.stall, now: D.at(60_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(10)))
        // The client stops reading: the channel fills.
        machine.downstreamWritabilityChanged(writable: false, now: D.at(61_000))
        machine.downstreamWritabilityChanged(writable: true, now: D.at(65_000))
        #expect(machine.timerFired(.stall, now: D.at(70_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(10)))
        machine.downstreamWritabilityChanged(writable: false, now: D.at(71_000))
        #expect(machine.timerFired(.stall, now: D.at(80_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(1)))
        let cut = machine.timerFired(.stall, now: D.at(81_000), unsentBytes: 0)
        guard case .cut(cancelUpstream: true, record: .cutShort(_, error: .clientStalled(_, reading: true))) = cut
        else {
            Issue.record("expected the response cut as a stalled reader's, got \(cut)")
            return
        }
    }

    /// The handler keeps a stall timer that is still pending when the next request starts
    /// (replacing it on every request cost a task and a cancel each): its early look must
    /// push the check to what remains of the new request's time, and cut nothing.
    @Test("a stall timer left from an earlier request is kept: it looks early at the next one and waits out the rest")
    func timerFromAnEarlierRequest() {
        var machine = stalling()
        let first = D.request(&machine)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        _ = machine.responseEndReceived(trailers: nil)
        let second = D.head(&machine)
        #expect(second == first + 1)
        #expect(
            machine.exchangeStarted(number: second, now: D.at(8_000))
                == .exchangeUnderWay(sendContinue: false, requestTimeout: nil, stallCheckIn: nil),
            "the first request's timer is still scheduled: no second one")
        // The first request's timer, scheduled at 0 for 10 s.
        #expect(machine.timerFired(.stall, now: D.at(10_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(8)))
        #expect(machine.timerFired(.stall, now: D.at(18_000), unsentBytes: 0) == uploadStalledCut)
    }

    @Test("a WebSocket client that sends nothing is not stalled; between requests the timer stops")
    func quietWebSocketAndIdle() {
        var machine = stalling()
        let number = D.head(&machine, D.request(upgrade: "websocket"))
        _ = machine.exchangeStarted(number: number, now: D.at(0))
        _ = machine.responseHeadReceived(
            ProxyResponseHead(status: .switchingProtocols, upgrade: "websocket"), hasBody: true)
        #expect(machine.timerFired(.stall, now: D.at(600_000), unsentBytes: 0) == .schedule(.stall, in: .seconds(10)))

        var idle = stalling()
        let first = D.request(&idle)
        _ = idle.responseHeadReceived(D.ok(), hasBody: false)
        _ = idle.responseEndReceived(trailers: nil)
        #expect(first == 1 && idle.timerFired(.stall, now: D.at(10_000), unsentBytes: 0) == .none)
        // The timer stopped: the next exchange schedules it again.
        let second = D.head(&idle)
        #expect(
            idle.exchangeStarted(number: second, now: D.at(20_000))
                == .exchangeUnderWay(sendContinue: false, requestTimeout: nil, stallCheckIn: .seconds(10)))
    }
}

@Suite("In-flight limits: per address group and per tunnel, with a bounded line")
struct InFlightLimitsTests {
    private func group(_ ip: String) -> AddressGroup { AddressGroup(try? SocketAddress(ipAddress: ip, port: 1)) }
    private final class Tunnel {}

    @Test("past the per-address cap a request waits; a released place wakes it")
    func perAddress() throws {
        let limits = InFlightLimits(caps: .init(perAddress: 2, perTunnel: 10))
        let tunnel = ObjectIdentifier(Tunnel.self)
        let woken = WokenSlots()
        var slots: [InFlightLimits.Slot] = []
        for _ in 0..<2 {
            guard case .admitted(let slot) = limits.admit(address: group("192.0.2.1"), tunnel: tunnel, wake: woken.add)
            else { throw TestFailure("not admitted") }
            slots.append(slot)
        }
        guard
            case .waiting(_, .perAddress(2, _)) = limits.admit(
                address: group("192.0.2.1"), tunnel: tunnel, wake: woken.add)
        else { throw TestFailure("not waiting") }
        // Another address is not held up by the one at its cap.
        guard case .admitted = limits.admit(address: group("192.0.2.2"), tunnel: tunnel, wake: woken.add) else {
            throw TestFailure("another address waited")
        }
        limits.release(slots[0])
        #expect(woken.count == 1)
        #expect(limits.inFlight(from: group("192.0.2.1")) == 2)
    }

    @Test("the wake-up is made only for a request that goes in line, and is the one called")
    func wakeMadeOnlyInLine() throws {
        let limits = InFlightLimits(caps: .init(perAddress: 1, perTunnel: 10))
        let tunnel = ObjectIdentifier(Tunnel.self)
        let woken = WokenSlots()
        var made = 0
        func wake() -> @Sendable (InFlightLimits.Slot) -> Void {
            made += 1
            return woken.add
        }
        guard case .admitted(let slot) = limits.admit(address: group("192.0.2.1"), tunnel: tunnel, wake: wake())
        else { throw TestFailure("not admitted") }
        #expect(made == 0, "a wake-up was made for a request admitted at once")
        guard case .waiting = limits.admit(address: group("192.0.2.1"), tunnel: tunnel, wake: wake())
        else { throw TestFailure("not waiting") }
        #expect(made == 1)
        limits.release(slot)
        #expect(woken.count == 1, "the waiting request's own wake-up was not called")
    }

    @Test("past the per-tunnel cap requests wait in a line no longer than the cap, then are refused at once")
    func perTunnel() throws {
        let limits = InFlightLimits(caps: .init(perAddress: 100, perTunnel: 1))
        let tunnel = ObjectIdentifier(Tunnel.self)
        let woken = WokenSlots()
        guard case .admitted(let slot) = limits.admit(address: group("192.0.2.1"), tunnel: tunnel, wake: woken.add)
        else { throw TestFailure("not admitted") }
        guard
            case .waiting(let ticket, .perTunnel(1)) = limits.admit(
                address: group("192.0.2.2"), tunnel: tunnel, wake: woken.add)
        else { throw TestFailure("not waiting") }
        guard case .refused(.perTunnel(1)) = limits.admit(address: group("192.0.2.3"), tunnel: tunnel, wake: woken.add)
        else { throw TestFailure("the line grew past the cap") }
        #expect(limits.cancel(ticket), "taken out of line before a place freed up")
        limits.release(slot)
        #expect(woken.count == 0)
        #expect(!limits.cancel(ticket))
    }

    @Test("without per-tunnel counting (the embedded relay) only the per-address cap applies, and is named")
    func perAddressOnly() throws {
        let limits = InFlightLimits(caps: .init(perAddress: 1, perTunnel: 1, countsTunnels: false))
        let tunnel = ObjectIdentifier(Tunnel.self)
        let woken = WokenSlots()
        for address in ["192.0.2.1", "192.0.2.2"] {
            guard case .admitted = limits.admit(address: group(address), tunnel: tunnel, wake: woken.add)
            else { throw TestFailure("\(address) not admitted past a per-tunnel cap that does not apply") }
        }
        guard
            case .waiting(_, .perAddress(1, _)) = limits.admit(
                address: group("192.0.2.1"), tunnel: tunnel, wake: woken.add)
        else { throw TestFailure("the per-address cap did not apply") }
    }
}

private final class WokenSlots: Sendable {
    private let slots = NIOLockedValueBox<[InFlightLimits.Slot]>([])
    var count: Int { slots.withLockedValue { $0.count } }
    func add(_ slot: InFlightLimits.Slot) { slots.withLockedValue { $0.append(slot) } }
}

private struct TestFailure: Error {
    let description: String
    init(_ description: String) { self.description = description }
}
