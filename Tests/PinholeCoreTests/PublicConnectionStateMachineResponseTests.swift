import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

@Suite("Public connection state machine: responses, switches and closes")
struct PublicConnectionStateMachineResponseTests {
    typealias Machine = PublicConnectionStateMachine
    typealias D = MachineDriver

    @Test("a keep-alive response streams, with one flush per tick, then the next request may come")
    func keepAliveResponse() {
        var machine = D.active()
        _ = D.request(&machine)
        let head = D.ok(["content-length": "4"])
        #expect(
            machine.responseHeadReceived(head, hasBody: true)
                == .writeResponseHead(
                    head, version: .http1_1, hasBody: true, connection: nil, endRequest: false, scheduleFlush: true))
        #expect(D.exchange(of: machine)?.status == 200)
        let piece = ByteBuffer(string: "ab")
        #expect(machine.responseBodyReceived(piece) == .writeResponseBody(piece, scheduleFlush: false))
        #expect(machine.flushDue() == .flush)
        #expect(machine.responseBodyReceived(piece) == .writeResponseBody(piece, scheduleFlush: true))
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .nextRequest))
        #expect(machine.state == .idle)
        #expect(machine.responseBodyReceived(piece) == .none, "a piece after the end goes nowhere")
    }

    @Test("a client that did not keep alive is told so, and the connection closes after the answer")
    func noKeepAlive() {
        var machine = D.active()
        _ = D.request(&machine, keepAlive: false)
        #expect(
            machine.responseHeadReceived(D.ok(), hasBody: false)
                == .writeResponseHead(
                    D.ok(), version: .http1_1, hasBody: false, connection: "close", endRequest: false,
                    scheduleFlush: true))
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .closeAfterAnswer))
        #expect(machine.state == .closing(.answering))
    }

    @Test("HTTP/1.0: kept alive when asked and the body has a length; without a length, the close ends the body")
    func http10() {
        var machine = D.active()
        _ = D.request(&machine, version: .http1_0, keepAlive: true)
        let sized = D.ok(["content-length": "3"])
        #expect(
            machine.responseHeadReceived(sized, hasBody: true)
                == .writeResponseHead(
                    sized, version: .http1_0, hasBody: true, connection: "keep-alive", endRequest: false,
                    scheduleFlush: true))
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .nextRequest))

        machine = D.active()
        _ = D.request(&machine, version: .http1_0, keepAlive: true)
        let unsized = D.ok([:])
        #expect(
            machine.responseHeadReceived(unsized, hasBody: true)
                == .writeResponseHead(
                    unsized, version: .http1_0, hasBody: true, connection: "close", endRequest: false,
                    scheduleFlush: true))
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .closeAfterAnswer))

        machine = D.active()
        _ = D.request(&machine, version: .http1_0, keepAlive: true)
        let noContent = ProxyResponseHead(status: .noContent)
        #expect(
            machine.responseHeadReceived(noContent, hasBody: false)
                == .writeResponseHead(
                    noContent, version: .http1_0, hasBody: false, connection: "keep-alive", endRequest: false,
                    scheduleFlush: true),
            "no body, so no length needed")
    }

    @Test("an answer before the request body ends: the body still goes up, and the connection closes after it")
    func answerBeforeBodyEnds() {
        var machine = D.active()
        _ = D.request(&machine, bodyFollows: true)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        let piece = ByteBuffer(string: "more")
        #expect(machine.isReadyForRequestBytes)
        #expect(machine.requestBodyReceived(piece) == .sendBody(piece))
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .closeAfterAnswer),
            "the rest of a body the application never read cannot be skipped")
        #expect(machine.bytesReceived(piece, now: D.at(0)) == .discard(closeIn: nil))
        #expect(machine.requestBodyReceived(piece) == .none)
    }

    @Test(
        "lingering close: our side ends once the answer is out; the client's bytes are dropped; quiet or late, it closes"
    )
    func lingeringClose() {
        var machine = D.active()
        _ = machine.requestMalformed(.malformedRequest("x"))
        #expect(machine.timerFired(.linger, now: D.at(0), unsentBytes: 0) == .none, "not before the answer is out")
        #expect(machine.answerWritten(now: D.at(1_000)) == .endOutputAndLinger(closeIn: .seconds(2)))
        #expect(machine.answerWritten(now: D.at(1_000)) == .none)
        let more = ByteBuffer(string: "body nobody reads")
        #expect(machine.bytesReceived(more, now: D.at(2_500)) == .discard(closeIn: .seconds(2)))
        #expect(
            machine.bytesReceived(more, now: D.at(30_000)) == .discard(closeIn: .seconds(1)),
            "at most 30 s after the answer")
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 1 << 20) == .read)
        #expect(machine.timerFired(.linger, now: D.at(31_000), unsentBytes: 0) == .close)
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: false, record: nil))
        #expect(machine.answerWritten(now: D.at(32_000)) == .none, "a write that completes after the end")
    }

    @Test("a WebSocket handshake: its request stays open, the 101 switches, and bytes pass both ways until the end")
    func upgrade() {
        var machine = D.active()
        let handshake = D.request(upgrade: "websocket")
        let number = D.head(&machine, handshake)
        _ = machine.exchangeStarted(number: number)
        #expect(machine.requestEndReceived(trailers: nil) == .none, "the handshake's request is not ended upstream")
        let switching = ProxyResponseHead(status: .switchingProtocols, upgrade: "websocket")
        #expect(
            machine.responseHeadReceived(switching, hasBody: true) == .switchProtocols(switching, scheduleFlush: true))
        #expect(machine.state == .switched(D.exchange(of: machine)!))
        let frame = ByteBuffer(bytes: [0x81, 0x00])
        #expect(machine.bytesReceived(frame, now: D.at(0)) == .passThrough(frame))
        #expect(machine.responseBodyReceived(frame) == .writeResponseBody(frame, scheduleFlush: false))
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 0) == .none)
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: 0) == .read)
        #expect(machine.inputClosed() == .sendEnd(trailers: nil), "the client's FIN goes on, in order")
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 101, then: .closeAfterAnswer))
    }

    @Test("a switched connection that ends is recorded with its 101; one that fails is cut, recorded the same")
    func switchedEnds() {
        var machine = D.active()
        _ = D.request(&machine, D.request(upgrade: "websocket"))
        _ = machine.responseHeadReceived(ProxyResponseHead(status: .switchingProtocols), hasBody: true)
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: true, record: .complete(status: 101)))

        machine = D.active()
        _ = D.request(&machine, D.request(upgrade: "websocket"))
        _ = machine.responseHeadReceived(ProxyResponseHead(status: .switchingProtocols), hasBody: true)
        #expect(
            machine.exchangeFailed(.tunnelLost(host: "a", reason: "reset"))
                == .cut(cancelUpstream: false, record: .complete(status: 101)))
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: false, record: nil))
    }

    @Test("a declined handshake is an ordinary answer: its request ends upstream, and the connection after it")
    func declinedUpgrade() {
        var machine = D.active()
        _ = D.request(&machine, D.request(upgrade: "websocket"))
        let refusal = ProxyResponseHead(status: .forbidden, headers: ["content-length": "0"])
        #expect(
            machine.responseHeadReceived(refusal, hasBody: true)
                == .writeResponseHead(
                    refusal, version: .http1_1, hasBody: true, connection: "close", endRequest: true,
                    scheduleFlush: true))
        #expect(machine.inputClosed() == .none)
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 403, then: .closeAfterAnswer))
    }

    @Test("a 101 nobody asked for is a 502, and the upstream is cancelled")
    func unsolicitedSwitch() {
        var machine = D.active()
        _ = D.request(&machine)
        let error = ExchangeError.protocolViolation("a switch of protocols that nobody asked for")
        #expect(
            machine.responseHeadReceived(ProxyResponseHead(status: .switchingProtocols), hasBody: false)
                == .answerAndClose(error, version: .http1_1, record: 502, cancelUpstream: true))
        #expect(machine.state == .closing(.answering))
    }

    @Test(
        "an upstream failure before the response head is answered and recorded; after it, the response is cut, recorded as such"
    )
    func failures() {
        let error = ExchangeError.targetClosedEarly(target: "http://127.0.0.1:3000")
        var machine = D.active()
        _ = D.request(&machine, version: .http1_0)
        #expect(
            machine.exchangeFailed(error)
                == .answerAndClose(error, version: .http1_0, record: 502, cancelUpstream: false))
        #expect(machine.exchangeFailed(error) == .none, "once")

        machine = D.active()
        _ = D.request(&machine)
        _ = machine.responseHeadReceived(D.ok(["content-length": "10"]), hasBody: true)
        #expect(
            machine.exchangeFailed(error) == .cut(cancelUpstream: false, record: .cutShort(status: 200, error: error)))
        #expect(machine.state == .closed)
        #expect(machine.responseBodyReceived(ByteBuffer(string: "late")) == .none)
        #expect(machine.responseEndReceived(trailers: nil) == .none)
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: false, record: nil))
    }

    @Test("a connection that ends mid-exchange cancels the upstream; the exchange is recorded as abandoned")
    func endsMidExchange() {
        var machine = D.active()
        _ = D.request(&machine, bodyFollows: true)
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: true, record: .abandoned(status: 0)))
        #expect(machine.state == .closed)
        #expect(machine.exchangeFailed(.tunnelLost(host: "a", reason: "gone")) == .none)

        machine = D.active()
        _ = D.request(&machine)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: true, record: .abandoned(status: 200)))
    }

    @Test("an answer that began within startExchange: the exchange goes on, untimed")
    func answerWhileStarting() {
        var machine = D.active(requestTimeout: .seconds(5))
        let number = D.head(&machine, expectsContinue: true)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        #expect(machine.exchangeStarted(number: number) == .exchangeUnderWay(sendContinue: true, requestTimeout: nil))
        #expect(machine.responseHeadReceived(D.ok(), hasBody: false) == .none, "one head per response")
    }

    @Test("its state reads as what the connection was doing, for the log")
    func stateDescription() {
        var machine = D.active()
        #expect("\(machine.state)" == "idle between requests")
        _ = D.request(&machine)
        #expect("\(machine.state)" == "waiting for the response to request 1")
    }
}
