import NIOHTTP1
import PinholeCore
import PinholeHTTP2
import Testing

@testable import PinholeTunnel

/// `OutgoingStreamStateMachine` without channels: one request as a stream this side
/// opens, from its head to how it ends.
@Suite("An outgoing stream's life")
struct OutgoingStreamStateMachineTests {
    private typealias Machine = OutgoingStreamStateMachine
    private let app = StreamPeer.app(target: "localhost:3000")
    private let agent = StreamPeer.agent(host: "alice.example")
    private let trailers: HTTPHeaders = ["grpc-status": "0"]

    @Test("a request, then its response with trailers: each passes once, and the end carries the trailers")
    func requestThenResponse() {
        var machine = Machine(peer: app)
        #expect(machine.requestEnded() == .finishRequest)
        #expect(machine.requestEnded() == Machine.Action.none)
        #expect(machine.responseHeadReceived() == .pass)
        #expect(machine.responseHeadReceived() == Machine.Action.none)
        #expect(machine.responseBodyReceived() == .pass)
        #expect(machine.responseTrailersReceived(trailers) == Machine.Action.none)
        #expect(machine.responseEnded() == .deliverEnd(trailers: trailers, resetStream: false))
        #expect(machine.state == .done)
        // The stream then closes as it should: nothing more to tell anyone.
        #expect(machine.streamClosed(nil) == Machine.Action.none)
    }

    @Test("an answer complete before the request (a 413 to an upload) resets the stream; the request's end is not sent")
    func answerBeforeTheRequestEnds() {
        var machine = Machine(peer: agent)
        #expect(machine.responseHeadReceived() == .pass)
        #expect(machine.responseEnded() == .deliverEnd(trailers: nil, resetStream: true))
        #expect(machine.requestEnded() == Machine.Action.none)
        #expect(machine.responseBodyReceived() == Machine.Action.none)
    }

    @Test("full duplex: the response begins while the request streams, and the request can still end")
    func fullDuplex() {
        var machine = Machine(peer: app)
        #expect(machine.responseHeadReceived() == .pass)
        #expect(machine.responseBodyReceived() == .pass)
        #expect(machine.requestEnded() == .finishRequest)
        #expect(machine.responseEnded() == .deliverEnd(trailers: nil, resetStream: false))
    }

    @Test("an app's stream closing before its head: unreachable; after it: closed early; each in the target's words")
    func appFailuresByPhase() {
        var before = Machine(peer: app)
        let closed = HTTP2Error.connectionClosed
        #expect(
            before.streamClosed(closed)
                == .fail(.targetUnreachable(target: "localhost:3000", reason: closed.description)))
        var after = Machine(peer: app)
        _ = after.responseHeadReceived()
        #expect(after.streamClosed(closed) == .fail(.targetClosedEarly(target: "localhost:3000")))
        #expect(after.streamClosed(closed) == Machine.Action.none)
    }

    @Test("a reset from the far end passes on as a reset with its code, naming the agent's host or the app")
    func resetsNameTheirPeer() {
        let reset = HTTP2Error.streamReset(streamID: 1, code: .cancel)
        var viaAgent = Machine(peer: agent)
        guard case .fail(.streamReset(let code, let reason)) = viaAgent.streamClosed(reset) else {
            Issue.record("a reset passes on as a reset")
            return
        }
        #expect(code == HTTP2ErrorCode.cancel.rawValue)
        #expect(reason.contains("the agent for alice.example"))
        var viaApp = Machine(peer: app)
        _ = viaApp.responseHeadReceived()
        guard case .fail(.streamReset(_, let appReason)) = viaApp.streamClosed(reset) else {
            Issue.record("a reset passes on as a reset")
            return
        }
        #expect(appReason.hasPrefix("localhost:3000 reset"))
    }

    @Test("the tunnel going away is a lost tunnel for the agent's host, whatever the phase")
    func tunnelLost() {
        var machine = Machine(peer: agent)
        _ = machine.responseHeadReceived()
        #expect(
            machine.streamClosed(.connectionClosed)
                == .fail(.tunnelLost(host: "alice.example", reason: HTTP2Error.connectionClosed.description)))
    }

    @Test("the downstream going away cancels the stream once; what the stream says after goes nowhere")
    func downstreamGoesAway() {
        var machine = Machine(peer: app)
        _ = machine.responseHeadReceived()
        #expect(machine.downstreamWentAway() == .cancelStream)
        #expect(machine.downstreamWentAway() == Machine.Action.none)
        #expect(machine.responseBodyReceived() == Machine.Action.none)
        #expect(machine.responseEnded() == Machine.Action.none)
        #expect(machine.streamClosed(.streamReset(streamID: 1, code: .cancel)) == Machine.Action.none)
    }

    @Test("a response head Pinhole cannot pass on fails the exchange with its error, once")
    func invalidHead() {
        var machine = Machine(peer: app)
        let error = ExchangeError.protocolViolation("the tunnelled response has no valid :status")
        #expect(machine.responseHeadInvalid(error) == .fail(error))
        #expect(machine.streamClosed(.streamReset(streamID: 1, code: .cancel)) == Machine.Action.none)
        #expect(machine.requestEnded() == Machine.Action.none)
        // As the upstream asks: the head is taken first, then found invalid once read.
        var read = Machine(peer: app)
        #expect(read.responseHeadReceived() == .pass)
        #expect(read.responseHeadInvalid(error) == .fail(error))
        #expect(read.responseBodyReceived() == Machine.Action.none)
    }

    @Test("an end with no head before it fails the exchange rather than end it without a response")
    func endWithoutHead() {
        var fromApp = Machine(peer: app)
        #expect(fromApp.responseEnded() == .fail(.targetClosedWithoutAnswer(target: "localhost:3000")))
        var fromAgent = Machine(peer: agent)
        guard case .fail(.protocolViolation(let reason)) = fromAgent.responseEnded() else {
            Issue.record("a headless end through the tunnel is the agent's protocol error")
            return
        }
        #expect(reason.contains("the agent for alice.example"))
    }

    @Test("opening the stream failed: the app is unreachable, in its words")
    func openFailed() {
        let machine = Machine(peer: app)
        let error = HTTP2Error.connectionDraining
        #expect(
            machine.openFailed(error) == .targetUnreachable(target: "localhost:3000", reason: error.description))
    }
}
