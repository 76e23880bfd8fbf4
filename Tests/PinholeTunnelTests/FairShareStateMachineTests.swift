import NIOCore
import NIOHTTP1
import PinholeCore
import Testing

@testable import PinholeTunnel

/// `FairShareStateMachine` without channels: places, the line, and who is not moving.
@Suite("A public HTTP/2 stream's fair share")
struct FairShareStateMachineTests {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let stall = TimeAmount.seconds(60)
    /// What a client that sent none of its body for `stall` gets, without caps.
    private let uploadCut = FairShareStateMachine.Action.cutOff(nil, .clientStalled(seconds: 60, reading: false))

    /// A real place and a real ticket from caps of one.
    private func placeAndTicket() -> (InFlightLimits, InFlightLimits.Slot, InFlightLimits.Ticket) {
        let limits = InFlightLimits(caps: .init(perAddress: 1, perTunnel: 8, waitLimit: .seconds(5)))
        guard case .admitted(let slot) = limits.admit(address: AddressGroup(nil), tunnel: nil, wake: { _ in }),
            case .waiting(let ticket, _) = limits.admit(address: AddressGroup(nil), tunnel: nil, wake: { _ in })
        else { fatalError("caps of one admit one and queue the next") }
        return (limits, slot, ticket)
    }

    private var limit: InFlightLimits.Limit { .perAddress(1, AddressGroup(nil)) }

    /// A machine for a request with `body`, admitted at `start` without caps (no place),
    /// its exchange started.
    private func running(_ body: FairShareStateMachine.RequestBody) -> FairShareStateMachine {
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: body)
        _ = machine.admitted(nil, now: start)
        _ = machine.exchangeStarted(appTakesMore: true, now: start)
        return machine
    }

    @Test("admitted at once: a bodiless request starts with no stall check; its end gives the place back")
    func admittedAtOnce() {
        let (_, slot, _) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .none)
        #expect(machine.admitted(slot, now: start) == .startExchange)
        #expect(machine.exchangeStarted(appTakesMore: true, now: start) == .none)
        #expect(machine.exchangeEnded() == .finished(slot))
        #expect(machine.exchangeEnded() == .none)
        #expect(machine.clientWentAway() == .none)
    }

    @Test("in line: the wait ends in a 503 naming the cap, with the configured wait")
    func waitEnds() {
        let (_, _, ticket) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: nil, requestBody: .announced)
        #expect(machine.queued(ticket, limit: limit, wait: .seconds(5)) == .waitInLine(deadlineIn: .seconds(5)))
        #expect(machine.isWaiting)
        let action = machine.waitEnded()
        #expect(action == .giveUp(ticket, .tooManyInFlight(limit, waited: .seconds(5))))
        if case .giveUp(_, let error) = action {
            #expect(error.status.code == 503)
            #expect(error.message.contains("--max-in-flight-per-address"))
        }
        #expect(machine.waitEnded() == .none)
    }

    @Test("a place that comes after the wait ended, or after a reset, is given back")
    func latePlaceReleased() {
        let (_, slot, ticket) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: nil, requestBody: .none)
        _ = machine.queued(ticket, limit: limit, wait: .seconds(5))
        #expect(machine.clientWentAway() == .leaveLine(ticket))
        #expect(machine.admitted(slot, now: start) == .release(slot))

        var timedOut = FairShareStateMachine(stallTimeout: nil, requestBody: .none)
        _ = timedOut.queued(ticket, limit: limit, wait: .seconds(5))
        _ = timedOut.waitEnded()
        #expect(timedOut.admitted(slot, now: start) == .release(slot))
    }

    @Test("a place in time starts the exchange; a full line refuses at once")
    func placeInTimeAndRefusal() {
        let (_, slot, ticket) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: nil, requestBody: .none)
        _ = machine.queued(ticket, limit: limit, wait: .seconds(5))
        #expect(machine.admitted(slot, now: start) == .startExchange)
        #expect(machine.exchangeStarted(appTakesMore: true, now: start) == .none)
        #expect(machine.waitEnded() == .none)
        #expect(machine.clientWentAway() == .cancelExchange(slot))

        var refused = FairShareStateMachine(stallTimeout: nil, requestBody: .none)
        #expect(refused.refused(limit) == .refuse(.tooManyInFlight(limit, waited: .zero)))
    }

    @Test("an exchange that cannot start gives its place back")
    func startFails() {
        let (_, slot, _) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .announced)
        _ = machine.admitted(slot, now: start)
        #expect(machine.startFailed() == .finished(slot))
    }

    @Test("a client that sends no body while the app takes it is cut off after the stall timeout, with 408")
    func uploadStall() {
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .announced)
        #expect(machine.admitted(nil, now: start) == .startExchange)
        #expect(machine.exchangeStarted(appTakesMore: true, now: start) == .checkStall(in: stall))
        #expect(machine.requestBodyArrived(now: start + .seconds(10)) == .none, "a check is already scheduled")
        #expect(machine.stallCheckDue(now: start + .seconds(60)) == .checkStall(in: .seconds(10)))
        let action = machine.stallCheckDue(now: start + .seconds(70))
        #expect(action == uploadCut)
        if case .cutOff(_, let error) = action { #expect(error.status.code == 408) }
    }

    /// A bidirectional gRPC call whose client waits for the app's first message, the app
    /// at a breakpoint: nothing moves on either side, and the client must not be cut.
    @Test("a body of no announced length has no upload clock until its first piece; then it runs")
    func unannouncedBodyWaitsForItsFirstPiece() {
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .unannounced)
        #expect(machine.admitted(nil, now: start) == .startExchange)
        #expect(machine.exchangeStarted(appTakesMore: true, now: start) == .none, "no clock, no check")
        #expect(machine.requestBodyArrived(now: start + .seconds(3_600)) == .checkStall(in: stall), "an hour later")
        #expect(machine.stallCheckDue(now: start + .seconds(3_630)) == .checkStall(in: .seconds(30)))
        #expect(machine.stallCheckDue(now: start + .seconds(3_660)) == uploadCut)
    }

    @Test("an exchange that ended while it started (an app answering at once) gets no stall check")
    func endedWhileStarting() {
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .announced)
        #expect(machine.admitted(nil, now: start) == .startExchange)
        #expect(machine.exchangeEnded() == .finished(nil))
        #expect(
            machine.exchangeStarted(appTakesMore: true, now: start) == .none, "a check for an exchange already over")

        var started = FairShareStateMachine(stallTimeout: stall, requestBody: .announced)
        _ = started.admitted(nil, now: start)
        #expect(started.exchangeStarted(appTakesMore: true, now: start) == .checkStall(in: stall))
        #expect(started.exchangeStarted(appTakesMore: true, now: start) == .none, "one check at a time")

        var appBusy = FairShareStateMachine(stallTimeout: stall, requestBody: .announced)
        _ = appBusy.admitted(nil, now: start)
        #expect(appBusy.exchangeStarted(appTakesMore: false, now: start) == .none, "an app taking no body: no clock")
        #expect(appBusy.appWritabilityChanged(takesMore: true, now: start + .seconds(5)) == .checkStall(in: stall))
    }

    @Test("a body awaited but not begun: its end, the answer, or the app's pauses start no clock")
    func firstPieceNeverCame() {
        var ended = running(.unannounced)
        ended.requestEnded()
        #expect(ended.requestBodyArrived(now: start + .seconds(1)) == .none, "no upload clock after the end")

        var answered = running(.unannounced)
        answered.responseHeadArrived(final: true)
        #expect(answered.requestBodyArrived(now: start + .seconds(1)) == .none, "full duplex: no upload clock")

        var paused = running(.unannounced)
        #expect(paused.appWritabilityChanged(takesMore: false, now: start + .seconds(1)) == .none)
        #expect(paused.appWritabilityChanged(takesMore: true, now: start + .seconds(2)) == .none)
        #expect(paused.requestBodyArrived(now: start + .seconds(3)) == .checkStall(in: stall), "the first piece")
    }

    @Test("a request's head tells whether its body's clock starts with the exchange")
    func requestBodyFromHead() {
        func head(_ fields: HTTPHeaders, endsStream: Bool = false) -> ProxyRequestHead {
            var head = ProxyRequestHead(method: .POST, path: "/", authority: "app", scheme: "http", headers: fields)
            head.mayHaveBody = !endsStream
            return head
        }
        typealias Body = FairShareStateMachine.RequestBody
        #expect(Body(head(["content-length": "10"], endsStream: true)) == .none)
        #expect(Body(head(["content-length": "10"])) == .announced)
        #expect(Body(head(["content-type": "application/grpc"])) == .unannounced)
        #expect(Body(head(["content-length": "10", "expect": "100-Continue"])) == .unannounced)
    }

    @Test("an app that takes no body (a breakpoint) stops the upload clock; taking again restarts it")
    func appPausedStopsUploadClock() {
        var machine = running(.announced)
        #expect(machine.appWritabilityChanged(takesMore: false, now: start + .seconds(1)) == .none)
        #expect(machine.stallCheckDue(now: start + .seconds(60)) == .none, "no clock runs: the check goes idle")
        #expect(machine.appWritabilityChanged(takesMore: true, now: start + .seconds(600)) == .checkStall(in: stall))
        #expect(machine.stallCheckDue(now: start + .seconds(630)) == .checkStall(in: .seconds(30)))
        #expect(machine.stallCheckDue(now: start + .seconds(660)) == uploadCut)
    }

    @Test("a finished body, or an answer begun (full duplex), stops the upload clock; 1xx does not")
    func uploadSettles() {
        var ended = running(.announced)
        ended.requestEnded()
        #expect(ended.stallCheckDue(now: start + .seconds(600)) == .none)

        var answered = running(.announced)
        answered.responseHeadArrived(final: false)
        #expect(answered.stallCheckDue(now: start + .seconds(60)) == uploadCut)
        var duplex = running(.announced)
        duplex.responseHeadArrived(final: true)
        #expect(duplex.stallCheckDue(now: start + .seconds(600)) == .none)
    }

    @Test("a body that ended while in line leaves no upload clock running")
    func endedWhileWaiting() {
        let (_, slot, ticket) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .announced)
        _ = machine.queued(ticket, limit: limit, wait: .seconds(5))
        machine.requestEnded()
        #expect(machine.admitted(slot, now: start) == .startExchange)
        #expect(machine.exchangeStarted(appTakesMore: true, now: start) == .none)
    }

    @Test("a client that reads none of the answer is cut off; reading again restarts the clock")
    func downloadStall() {
        let (_, slot, _) = placeAndTicket()
        var machine = FairShareStateMachine(stallTimeout: stall, requestBody: .none)
        _ = machine.admitted(slot, now: start)
        machine.responseHeadArrived(final: true)
        #expect(machine.downloadWritability(clientReads: false, now: start + .seconds(5)) == .checkStall(in: stall))
        // Still the first moment, and the check is scheduled.
        #expect(machine.downloadWritability(clientReads: false, now: start + .seconds(50)) == .none)
        #expect(machine.stallCheckDue(now: start + .seconds(60)) == .checkStall(in: .seconds(5)))
        #expect(machine.downloadWritability(clientReads: true, now: start + .seconds(62)) == .none)
        #expect(machine.stallCheckDue(now: start + .seconds(65)) == .none, "reading again: the check goes idle")
        #expect(machine.downloadWritability(clientReads: false, now: start + .seconds(70)) == .checkStall(in: stall))
        #expect(
            machine.stallCheckDue(now: start + .seconds(130))
                == .cutOff(slot, .clientStalled(seconds: 60, reading: true)))
        #expect(machine.exchangeEnded() == .none)
    }

    @Test("no stall timeout: no clock at all")
    func noStallTimeout() {
        var machine = FairShareStateMachine(stallTimeout: nil, requestBody: .announced)
        #expect(machine.admitted(nil, now: start) == .startExchange)
        #expect(machine.exchangeStarted(appTakesMore: true, now: start) == .none)
        #expect(machine.downloadWritability(clientReads: false, now: start) == .none)
        #expect(machine.stallCheckDue(now: start + .hours(1)) == .none)
    }
}
