import Testing

@testable import PinholeTunnel

@Suite("The h2c app connection's lifecycle, without channels")
struct AppConnectionStateMachineTests {
    typealias Machine = AppConnectionStateMachine<String, Int>

    @Test("the first request connects; later ones wait; all open once connected")
    func connectThenOpen() {
        var machine = Machine()
        guard case .connect(let generation) = machine.requestArrived(1) else {
            Issue.record("expected a connect")
            return
        }
        guard case .none = machine.requestArrived(2) else {
            Issue.record("a second request must wait for the same attempt")
            return
        }
        guard
            case .openWaiting(let waiting, let connection, generation) = machine.connected(generation: generation, "c1")
        else {
            Issue.record("expected the waiting requests to open")
            return
        }
        #expect(waiting == [1, 2] && connection == "c1")
        guard case .open("c1", generation) = machine.requestArrived(3) else {
            Issue.record("a request on a ready connection opens at once")
            return
        }
    }

    @Test("a failed attempt fails every waiting request with its reason, and the next request tries again")
    func connectFails() {
        var machine = Machine()
        guard case .connect(let first) = machine.requestArrived(1) else { return }
        _ = machine.requestArrived(2)
        guard case .failWaiting(let waiting, let reason) = machine.connectFailed(generation: first, reason: "refused")
        else {
            Issue.record("expected the waiters to fail")
            return
        }
        #expect(waiting == [1, 2] && reason == "refused")
        guard case .connect(let second) = machine.requestArrived(3) else {
            Issue.record("expected a new attempt")
            return
        }
        #expect(second != first)
    }

    @Test("a connection that ends (closed, or GOAWAY) is let go; events of an old one change nothing")
    func connectionEnds() {
        var machine = Machine()
        guard case .connect(let first) = machine.requestArrived(1) else { return }
        _ = machine.connected(generation: first, "c1")
        _ = machine.connectionEnded(generation: first)
        guard case .connect(let second) = machine.requestArrived(2) else {
            Issue.record("expected a reconnect")
            return
        }
        // The old connection's late events must not touch the new attempt.
        _ = machine.connectionEnded(generation: first)
        guard case .none = machine.connectFailed(generation: first, reason: "late") else {
            Issue.record("a stale failure must be ignored")
            return
        }
        guard case .close("stale") = machine.connected(generation: first, "stale") else {
            Issue.record("a stale connection is closed")
            return
        }
        guard case .openWaiting([2], "c2", second) = machine.connected(generation: second, "c2") else {
            Issue.record("the new attempt still completes")
            return
        }
    }
}
