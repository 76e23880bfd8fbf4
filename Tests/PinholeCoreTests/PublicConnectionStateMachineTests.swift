import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

/// Helpers for driving `PublicConnectionStateMachine` by hand, the way
/// `PublicRequestHandler` does, with times given in milliseconds from `start`.
enum MachineDriver {
    typealias Machine = PublicConnectionStateMachine

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    static func at(_ milliseconds: Int64) -> NIODeadline { start + .milliseconds(milliseconds) }

    static func request(_ path: String = "/", upgrade: String? = nil) -> ProxyRequestHead {
        ProxyRequestHead(method: .GET, path: path, authority: "a", scheme: "http", headers: [:], upgrade: upgrade)
    }

    /// A machine whose channel is active since `start`.
    static func active(
        headTimeout: TimeAmount = .seconds(30), idleTimeout: TimeAmount? = .minutes(65),
        requestTimeout: TimeAmount? = nil
    ) -> Machine {
        var machine = Machine(headTimeout: headTimeout, idleTimeout: idleTimeout, requestTimeout: requestTimeout)
        _ = machine.channelActive(now: start)
        return machine
    }

    /// Reads a request head, as the handler does: returns the exchange's number.
    static func head(
        _ machine: inout Machine, _ head: ProxyRequestHead = request(), version: HTTPVersion = .http1_1,
        keepAlive: Bool = true, expectsContinue: Bool = false
    ) -> Int {
        let action = machine.requestHeadReceived(
            head, version: version, keepAlive: keepAlive, expectsContinue: expectsContinue)
        guard case .startExchange(let started, let number) = action, started == head else {
            Issue.record("expected the exchange to start, got \(action)")
            return 0
        }
        return number
    }

    /// A request head read, its exchange started, and (unless `bodyFollows`) its end read.
    static func request(
        _ machine: inout Machine, _ head: ProxyRequestHead = request(), version: HTTPVersion = .http1_1,
        keepAlive: Bool = true, bodyFollows: Bool = false
    ) -> Int {
        let number = Self.head(&machine, head, version: version, keepAlive: keepAlive)
        _ = machine.exchangeStarted(number: number)
        if !bodyFollows { _ = machine.requestEndReceived(trailers: nil) }
        return number
    }

    static func ok(_ headers: HTTPHeaders = ["content-length": "0"]) -> ProxyResponseHead {
        ProxyResponseHead(status: .ok, headers: headers)
    }

    static func exchange(of machine: Machine) -> Machine.Exchange? {
        switch machine.state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange), .switched(let exchange):
            return exchange
        default:
            return nil
        }
    }
}

@Suite("Public connection state machine: requests, reads and timers")
struct PublicConnectionStateMachineTests {
    typealias Machine = PublicConnectionStateMachine
    typealias D = MachineDriver

    @Test("activation starts the idle clock once, however often it is reported")
    func activation() {
        var machine = Machine(headTimeout: .seconds(30), idleTimeout: .minutes(65), requestTimeout: nil)
        #expect(machine.state == .initialized)
        #expect(machine.channelActive(now: D.start) == .schedule(.idle, in: .seconds(30)))
        #expect(machine.state == .idle)
        #expect(machine.channelActive(now: D.at(1)) == .none)
    }

    @Test("bytes are parsed until a switch or a close; then passed through, or dropped")
    func bytesByState() {
        let bytes = ByteBuffer(string: "GET")
        var machine = D.active()
        #expect(machine.bytesReceived(bytes, now: D.at(0)) == .parse(bytes))
        #expect(machine.isReadyForRequestBytes)
        _ = D.request(&machine, D.request(upgrade: "websocket"))
        _ = machine.responseHeadReceived(ProxyResponseHead(status: .switchingProtocols), hasBody: true)
        #expect(machine.bytesReceived(bytes, now: D.at(0)) == .passThrough(bytes))
        #expect(!machine.isReadyForRequestBytes)
        _ = machine.channelInactive()
        #expect(machine.bytesReceived(bytes, now: D.at(0)) == .discard(closeIn: nil))
    }

    @Test("a head begun starts the head timer once; the request it completes stops it")
    func headTimer() {
        var machine = D.active()
        #expect(machine.parsingPaused(headBytesPending: true, now: D.at(0)) == .schedule(.head, in: .seconds(30)))
        #expect(machine.state == .headArriving)
        #expect(
            machine.parsingPaused(headBytesPending: true, now: D.at(10)) == .none,
            "more bytes of the same head do not restart the clock")
        let number = D.head(&machine)
        #expect(number == 1)
        #expect(machine.parsingPaused(headBytesPending: false, now: D.at(20)) == .cancel(.head))
        #expect(machine.timerFired(.head, now: D.at(30_000), unsentBytes: 0) == .none, "a late firing does nothing")
    }

    @Test("a head not finished in time is answered 408, and the connection closes after it")
    func headTimeout() {
        var machine = D.active(headTimeout: .seconds(30))
        _ = machine.parsingPaused(headBytesPending: true, now: D.at(0))
        #expect(
            machine.timerFired(.head, now: D.at(30_000), unsentBytes: 0)
                == .answerAndClose(.headTimedOut(seconds: 30), version: .http1_1, record: nil, cancelUpstream: false))
        #expect(machine.state == .closing(.answering))
        #expect(!machine.isReadyForRequestBytes)
    }

    @Test("blank lines between requests are not a head: no head timer, and the connection stays idle")
    func blankLines() {
        var machine = D.active()
        #expect(machine.parsingPaused(headBytesPending: false, now: D.at(5)) == .cancel(.head))
        #expect(machine.state == .idle)
        #expect(machine.timerFired(.head, now: D.at(30_000), unsentBytes: 0) == .none)
    }

    @Test("a request starts a numbered exchange; its body and end go upstream, then the parsing holds")
    func requestForwarded() {
        var machine = D.active()
        let number = D.head(&machine)
        #expect(machine.exchangeStarted(number: number) == .exchangeUnderWay(sendContinue: false, requestTimeout: nil))
        let piece = ByteBuffer(string: "body")
        #expect(machine.requestBodyReceived(piece) == .sendBody(piece))
        #expect(machine.isReadyForRequestBytes)
        #expect(machine.requestEndReceived(trailers: ["x-sum": "1"]) == .sendEnd(trailers: ["x-sum": "1"]))
        #expect(!machine.isReadyForRequestBytes, "what follows is a pipelined request: it waits")
        #expect(D.exchange(of: machine)?.request == .ended)
        #expect(machine.requestBodyReceived(piece) == .none)
        #expect(machine.requestEndReceived(trailers: nil) == .none)
        #expect(
            machine.requestHeadReceived(D.request(), version: .http1_1, keepAlive: true, expectsContinue: false)
                == .none,
            "one request at a time")
    }

    @Test("100 Continue goes out once the exchange has started, and only to HTTP/1.1 clients")
    func expectContinue() {
        var machine = D.active()
        var number = D.head(&machine, expectsContinue: true)
        #expect(machine.exchangeStarted(number: number) == .exchangeUnderWay(sendContinue: true, requestTimeout: nil))

        machine = D.active()
        number = D.head(&machine, version: .http1_0, expectsContinue: true)
        #expect(machine.exchangeStarted(number: number) == .exchangeUnderWay(sendContinue: false, requestTimeout: nil))
    }

    @Test(
        "a head that cannot be forwarded, or that no target takes, is answered unrecorded, then the connection closes")
    func refused() {
        var machine = D.active()
        let missingHost = ExchangeError.malformedRequest("the request has no Host header")
        #expect(
            machine.requestRefused(missingHost, version: .http1_0)
                == .answerAndClose(missingHost, version: .http1_0, record: nil, cancelUpstream: false))
        #expect(machine.state == .closing(.answering))

        machine = D.active()
        let number = D.head(&machine)
        #expect(machine.exchangeRefused(number: number + 1, .noRoute(host: "a")) == .none, "not this exchange")
        #expect(
            machine.exchangeRefused(number: number, .noRoute(host: "a"))
                == .answerAndClose(.noRoute(host: "a"), version: .http1_1, record: 404, cancelUpstream: false))
        #expect(machine.exchangeStarted(number: number) == .none)
    }

    @Test("a target that fails within startExchange: answered and recorded, and the late start does nothing")
    func failsWhileStarting() {
        var machine = D.active()
        let number = D.head(&machine)
        let error = ExchangeError.agentNotConnected(host: "a")
        #expect(
            machine.exchangeFailed(error)
                == .answerAndClose(error, version: .http1_1, record: 503, cancelUpstream: false))
        #expect(machine.exchangeStarted(number: number) == .none)
        #expect(machine.requestEndReceived(trailers: nil) == .none)
    }

    @Test("an exchange that ended before its start returned does not take the next one's upstream")
    func staleStart() {
        var machine = D.active()
        let first = D.head(&machine)
        _ = machine.requestEndReceived(trailers: nil)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .nextRequest))
        let second = D.head(&machine)
        #expect(second == first + 1)
        #expect(machine.exchangeStarted(number: first) == .none)
        #expect(machine.exchangeStarted(number: second) == .exchangeUnderWay(sendContinue: false, requestTimeout: nil))
    }

    @Test("a malformed request: 400 over HTTP/1.1 between requests; in a body, its exchange fails and is cancelled")
    func malformed() {
        let error = ExchangeError.malformedRequest("the request has two Host fields")
        var machine = D.active()
        #expect(
            machine.requestMalformed(error)
                == .answerAndClose(error, version: .http1_1, record: nil, cancelUpstream: false))

        machine = D.active()
        _ = D.request(&machine, version: .http1_0, bodyFollows: true)
        #expect(
            machine.requestMalformed(error)
                == .answerAndClose(error, version: .http1_0, record: 400, cancelUpstream: true))

        machine = D.active()
        _ = D.request(&machine, bodyFollows: true)
        _ = machine.responseHeadReceived(D.ok(), hasBody: true)
        #expect(
            machine.requestMalformed(error) == .cut(cancelUpstream: true, record: .cutShort(status: 200, error: error)),
            "too late for a 400")
        #expect(machine.state == .closed)
    }

    @Test("the pipelining hold: a request read to its end waits for its response before the next is parsed")
    func pipeliningHold() {
        var machine = D.active()
        _ = D.request(&machine)
        let pipelined = ByteBuffer(string: "GET /2 HTTP/1.1\r\n")
        #expect(machine.bytesReceived(pipelined, now: D.at(0)) == .parse(pipelined))
        #expect(!machine.isReadyForRequestBytes)
        #expect(
            machine.parsingPaused(headBytesPending: true, now: D.at(0)) == .cancel(.head),
            "a head that waits for the response before it is not timed: that wait is ours")
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        #expect(!machine.isReadyForRequestBytes, "still held while the response goes out")
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .nextRequest))
        #expect(machine.isReadyForRequestBytes)
        #expect(machine.parsingPaused(headBytesPending: true, now: D.at(1)) == .schedule(.head, in: .seconds(30)))
    }

    @Test("a request read to its end behind a response already going out")
    func requestEndsBehindResponse() {
        var machine = D.active()
        _ = D.request(&machine, bodyFollows: true)
        _ = machine.responseHeadReceived(D.ok(["content-length": "2"]), hasBody: true)
        #expect(machine.requestEndReceived(trailers: nil) == .sendEnd(trailers: nil))
        #expect(!machine.isReadyForRequestBytes)
        #expect(
            machine.responseEndReceived(trailers: nil)
                == .finishResponse(trailers: nil, status: 200, then: .nextRequest))
        #expect(machine.state == .idle)
    }

    @Test("reads stop past 64 KiB of pipelined bytes, and resume once the response is out")
    func pipelinedReadHold() {
        let limit = Machine.maximumPipelinedBytes
        #expect(limit == 64 * 1024)
        var machine = D.active()
        _ = D.request(&machine)
        #expect(machine.readRequested(upstreamWritable: true, bufferedBytes: limit - 1) == .read)
        #expect(machine.readRequested(upstreamWritable: true, bufferedBytes: limit) == .none)
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: limit) == .none)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        _ = machine.responseEndReceived(trailers: nil)
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: limit) == .read)
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: 0) == .none, "one held read, one read")
    }

    @Test("backpressure on the request body: reads wait while the upstream cannot take more")
    func bodyBackpressure() {
        var machine = D.active()
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 0) == .read, "no upstream yet")
        _ = D.request(&machine, bodyFollows: true)
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 0) == .none)
        #expect(machine.readMayResume(upstreamWritable: false, bufferedBytes: 0) == .none)
        #expect(machine.readMayResume(upstreamWritable: true, bufferedBytes: 0) == .read)
        #expect(machine.readRequested(upstreamWritable: true, bufferedBytes: 70_000) == .read, "body, not pipelined")
    }

    @Test("a closing connection reads on, and lets a held read go")
    func closingReads() {
        var machine = D.active()
        _ = D.request(&machine, bodyFollows: true)
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 0) == .none)
        _ = machine.exchangeFailed(.targetUnreachable(target: "t", reason: "refused"))
        #expect(machine.readMayResume(upstreamWritable: false, bufferedBytes: 1 << 20) == .read)
        #expect(machine.readRequested(upstreamWritable: false, bufferedBytes: 1 << 20) == .read)
    }

    @Test("the request timer times the wait for the response head only, and answers 504")
    func requestTimeout() {
        var machine = D.active(requestTimeout: .seconds(5))
        let number = D.head(&machine)
        #expect(
            machine.exchangeStarted(number: number)
                == .exchangeUnderWay(sendContinue: false, requestTimeout: .seconds(5)))
        #expect(
            machine.timerFired(.request, now: D.at(5_000), unsentBytes: 0)
                == .answerAndClose(.timedOut(seconds: 5), version: .http1_1, record: 504, cancelUpstream: true))

        machine = D.active(requestTimeout: .seconds(5))
        _ = D.request(&machine)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        #expect(machine.timerFired(.request, now: D.at(5_000), unsentBytes: 0) == .none, "an answer has begun")

        machine = D.active()
        let untimed = D.head(&machine)
        #expect(machine.exchangeStarted(number: untimed) == .exchangeUnderWay(sendContinue: false, requestTimeout: nil))
        #expect(machine.timerFired(.request, now: D.at(5_000), unsentBytes: 0) == .none)
    }

    @Test("a connection that sends nothing closes at the head timeout, and one idle after requests at the idle timeout")
    func idleClose() {
        var machine = D.active(headTimeout: .milliseconds(100), idleTimeout: .seconds(1))
        #expect(machine.timerFired(.idle, now: D.at(99), unsentBytes: 0) == .schedule(.idle, in: .milliseconds(1)))
        #expect(machine.timerFired(.idle, now: D.at(100), unsentBytes: 0) == .close)

        machine = D.active(headTimeout: .milliseconds(100), idleTimeout: .seconds(1))
        _ = D.request(&machine)
        #expect(
            machine.timerFired(.idle, now: D.at(50_000), unsentBytes: 0) == .schedule(.idle, in: .milliseconds(100)),
            "a request in flight is never idle")
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        _ = machine.responseEndReceived(trailers: nil)
        _ = machine.parsingPaused(headBytesPending: false, now: D.at(60_000))
        #expect(
            machine.timerFired(.idle, now: D.at(60_500), unsentBytes: 0) == .schedule(.idle, in: .milliseconds(500)))
        #expect(
            machine.timerFired(.idle, now: D.at(61_000), unsentBytes: 10) == .schedule(.idle, in: .milliseconds(100)),
            "an answer not yet taken by a paused reader: not idle yet")
        #expect(machine.timerFired(.idle, now: D.at(62_000), unsentBytes: 0) == .close)
        #expect(machine.state == .idle, "the close is carried out; channelInactive tears down")
    }

    @Test("idle checks stop while closing, without an idle limit after a request, and never time a switched protocol")
    func idleExceptions() {
        var machine = D.active(idleTimeout: nil)
        _ = D.request(&machine)
        _ = machine.responseHeadReceived(D.ok(), hasBody: false)
        _ = machine.responseEndReceived(trailers: nil)
        _ = machine.parsingPaused(headBytesPending: false, now: D.at(1_000))
        #expect(machine.timerFired(.idle, now: D.at(100_000_000), unsentBytes: 0) == .none)

        machine = D.active(headTimeout: .milliseconds(100), idleTimeout: .seconds(1))
        _ = D.request(&machine, D.request(upgrade: "websocket"))
        _ = machine.responseHeadReceived(ProxyResponseHead(status: .switchingProtocols), hasBody: true)
        #expect(
            machine.timerFired(.idle, now: D.at(3_600_000), unsentBytes: 0) == .schedule(.idle, in: .milliseconds(100)))

        machine = D.active(headTimeout: .milliseconds(100))
        _ = machine.requestMalformed(.malformedRequest("x"))
        #expect(machine.timerFired(.idle, now: D.at(1_000), unsentBytes: 0) == .none)
    }

    @Test("an error closes the connection, whatever it was doing; the teardown follows its end")
    func errorCaught() {
        var machine = D.active()
        _ = D.request(&machine)
        #expect(machine.errorCaught() == .close)
        #expect(machine.state != .closed)
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: true, record: .abandoned(status: 0)))
        #expect(machine.channelInactive() == .tearDown(cancelUpstream: false, record: nil))
    }
}
