import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

/// The target connection's lifecycle, without any channel: events in, actions out.
@Suite("The target connection's state machine")
struct TargetConnectionStateMachineTests {
    typealias Machine = TargetConnectionStateMachine
    typealias Request = TargetConnectionStateMachine.Request

    static let get = Request(mayHaveBody: false, asksUpgrade: false, mayReplay: true)
    static let post = Request(mayHaveBody: true, asksUpgrade: false, mayReplay: false)
    static let put = Request(mayHaveBody: true, asksUpgrade: false, mayReplay: true)
    static let webSocket = Request(mayHaveBody: true, asksUpgrade: true, mayReplay: true)
    static let ok = ProxyResponseHead(status: .ok, headers: ["content-length": "2"])
    static let body = ByteBuffer(string: "hi")

    /// A fresh connection, opened for `request` and connected.
    private func opened(for request: Request) -> Machine {
        var machine = Machine(opening: request)
        _ = machine.connected()
        return machine
    }

    /// A connection that carried one GET and went back to the pool.
    private func pooled() -> Machine {
        var machine = opened(for: Self.get)
        _ = machine.requestEnd()
        _ = machine.responseHead(Self.ok, reusable: true)
        _ = machine.responseEnd(trailers: nil, inputLeft: false)
        #expect(machine.isIdle)
        return machine
    }

    // MARK: Opening

    @Test("a bodiless request's head goes as soon as the connection opens; its end flushes it")
    func bodilessRequest() {
        var machine = Machine(opening: Self.get)
        #expect(machine.connected() == .startRequest(writeHead: true, replayEnd: false, scheduleFlush: false))
        #expect(machine.requestEnd() == .writeEnd(writeHead: false, closeOutput: false))
        #expect(machine.responseHead(Self.ok, reusable: true) == .forwardHead(Self.ok))
        #expect(machine.responseBody(Self.body) == .forwardBody(Self.body))
        #expect(machine.responseEnd(trailers: nil, inputLeft: false) == .forwardEnd(trailers: nil, then: .release))
        #expect(machine.isIdle)
    }

    @Test("body and end that come while the connection opens are held, then sent after the head")
    func bodyWhileOpening() {
        var machine = Machine(opening: Self.post)
        #expect(machine.requestBody(Self.body) == .holdBody(Self.body))
        #expect(machine.requestEnd() == .none)
        #expect(machine.connected() == .startRequest(writeHead: false, replayEnd: true, scheduleFlush: false))
        // The handler feeds back what it held.
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: true, scheduleFlush: true))
        #expect(machine.requestEnd() == .writeEnd(writeHead: false, closeOutput: false))
        #expect(machine.flushDue() == .flush(writeHead: false))
    }

    @Test("held body is limited: past 64 KiB the exchange says it is not writable")
    func heldBodyLimit() {
        var machine = Machine(opening: Self.post)
        #expect(machine.mayHoldMore)
        _ = machine.requestBody(ByteBuffer(repeating: 0, count: Machine.heldBodyLimit))
        #expect(!machine.mayHoldMore)
        _ = machine.connected()
        #expect(machine.mayHoldMore)
    }

    @Test("a connection that cannot be opened fails its exchange as unreachable")
    func connectFails() {
        var machine = Machine(opening: Self.get)
        #expect(
            machine.connectFailed(reason: "connection refused")
                == .fail(.unreachable(reason: "connection refused"), close: false))
        #expect(machine.isClosed)
        #expect(machine.connected() == .none)
    }

    @Test("cancelled while connecting: nothing is sent, and the connection joins the pool once open")
    func cancelWhileConnecting() {
        var machine = Machine(opening: Self.post)
        _ = machine.requestBody(Self.body)
        #expect(machine.cancel() == .dropRequest)
        #expect(machine.requestBody(Self.body) == .none)
        #expect(machine.requestEnd() == .none)
        #expect(machine.connected() == .joinPool)
        #expect(machine.isIdle)
        #expect(machine.start(Self.get) == .startRequest(writeHead: true, replayEnd: false, scheduleFlush: false))
    }

    @Test("cancelled while connecting, and the connect fails: nobody is told")
    func cancelWhileConnectingThenFailure() {
        var machine = Machine(opening: Self.get)
        #expect(machine.cancel() == .dropRequest)
        #expect(machine.connectFailed(reason: "timed out") == .none)
        #expect(machine.isClosed)
    }

    // MARK: Sending

    @Test("a request that may have a body holds its head until the first piece, and flushes once per tick")
    func headHeldForBody() {
        var machine = Machine(opening: Self.post)
        #expect(machine.connected() == .startRequest(writeHead: false, replayEnd: false, scheduleFlush: true))
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: true, scheduleFlush: false))
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: false, scheduleFlush: false))
        #expect(machine.flushDue() == .flush(writeHead: false))
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: false, scheduleFlush: true))
        #expect(machine.requestEnd() == .writeEnd(writeHead: false, closeOutput: false))
        #expect(machine.requestBody(Self.body) == .none, "nothing after the end")
        #expect(machine.requestEnd() == .none)
    }

    @Test("no body and no end by the end of the tick: the head goes, announcing a body")
    func headAtEndOfTick() {
        var machine = Machine(opening: Self.post)
        _ = machine.connected()
        #expect(machine.flushDue() == .flush(writeHead: true))
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: false, scheduleFlush: true))
    }

    @Test("an end before any body sends the held head announcing none")
    func endWithoutBody() {
        var machine = Machine(opening: Self.post)
        _ = machine.connected()
        #expect(machine.requestEnd() == .writeEnd(writeHead: true, closeOutput: false))
        #expect(machine.flushDue() == .flush(writeHead: false))
    }

    // MARK: The response

    @Test("a response the target will not keep open closes the connection")
    func notReusable() {
        var machine = opened(for: Self.get)
        _ = machine.requestEnd()
        _ = machine.responseHead(Self.ok, reusable: false)
        #expect(machine.responseEnd(trailers: nil, inputLeft: false) == .forwardEnd(trailers: nil, then: .close))
        #expect(machine.isClosed)
    }

    @Test("bytes after the response that no request asked for: the connection closes")
    func extraBytes() {
        var machine = opened(for: Self.get)
        _ = machine.requestEnd()
        _ = machine.responseHead(Self.ok, reusable: true)
        #expect(machine.responseEnd(trailers: nil, inputLeft: true) == .forwardEnd(trailers: nil, then: .close))
    }

    @Test("an answer before the request body ends: passed on, the rest of the body dropped, the connection closed")
    func answerBeforeBodyEnds() {
        var machine = opened(for: Self.post)
        _ = machine.requestBody(Self.body)
        let rejected = ProxyResponseHead(status: .payloadTooLarge, headers: ["content-length": "0"])
        #expect(machine.responseHead(rejected, reusable: true) == .forwardHead(rejected))
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: false, scheduleFlush: false))
        let trailers: HTTPHeaders = ["x-sum": "1"]
        #expect(
            machine.responseEnd(trailers: trailers, inputLeft: false) == .forwardEnd(trailers: trailers, then: .close))
        #expect(machine.requestBody(Self.body) == .none)
        #expect(machine.requestEnd() == .none)
        #expect(machine.channelInactive(bodyEndsHere: false) == .none)
    }

    @Test("a response that runs to the close ends with the connection")
    func responseToClose() {
        var machine = opened(for: Self.get)
        _ = machine.requestEnd()
        let old = ProxyResponseHead(status: .ok, headers: [:])
        _ = machine.responseHead(old, reusable: false)
        _ = machine.responseBody(Self.body)
        #expect(machine.channelInactive(bodyEndsHere: true) == .forwardEnd(trailers: nil, then: .nothing))
        #expect(machine.isClosed)
    }

    @Test("a reset cuts a response short: it does not pass for complete, even one that runs to the close")
    func resetDuringResponse() {
        var machine = opened(for: Self.get)
        _ = machine.requestEnd()
        _ = machine.responseHead(Self.ok, reusable: false)
        machine.bytesReceived()
        #expect(machine.errorCaught() == .fail(.closedDuringResponse, close: true))
        #expect(machine.channelInactive(bodyEndsHere: true) == .none)
    }

    @Test("a 101 switches the connection: bytes both ways, the client's end closes our output, the close ends it")
    func switchingProtocols() {
        var machine = opened(for: Self.webSocket)
        #expect(machine.flushDue() == .flush(writeHead: true))
        let switched = ProxyResponseHead(status: .switchingProtocols, headers: [:], upgrade: "websocket")
        #expect(machine.responseHead(switched, reusable: true) == .forwardHead(switched))
        #expect(machine.responseBody(Self.body) == .forwardBody(Self.body))
        #expect(machine.requestBody(Self.body) == .writeBody(Self.body, writeHead: false, scheduleFlush: true))
        #expect(machine.requestEnd() == .writeEnd(writeHead: false, closeOutput: true))
        #expect(machine.channelInactive(bodyEndsHere: true) == .forwardEnd(trailers: nil, then: .nothing))
    }

    @Test("a handshake the app declines is an ordinary answer, but its connection is not reused")
    func upgradeDeclined() {
        var machine = opened(for: Self.webSocket)
        _ = machine.requestEnd()
        let declined = ProxyResponseHead(status: .upgradeRequired, headers: ["content-length": "0"])
        _ = machine.responseHead(declined, reusable: true)
        #expect(machine.responseEnd(trailers: nil, inputLeft: false) == .forwardEnd(trailers: nil, then: .close))
    }

    @Test("an invalid response fails the exchange and closes; garbage on an idle connection closes it")
    func invalidResponse() {
        let error = HTTP1SyntaxError(description: "garbage")
        var machine = opened(for: Self.get)
        #expect(machine.invalidResponse(error) == .fail(.invalidResponse(error), close: true))
        var idle = pooled()
        #expect(idle.invalidResponse(error) == .close)
        #expect(idle.isClosed)
    }

    // MARK: Backpressure

    @Test("a read is held while the downstream cannot take more, and resumed when it can")
    func heldRead() {
        var machine = opened(for: Self.get)
        #expect(machine.read(downstreamWritable: true) == .read)
        #expect(machine.read(downstreamWritable: false) == .none)
        #expect(machine.downstreamWritable() == .read)
        #expect(machine.downstreamWritable() == .none, "one read for one held")
        var idle = pooled()
        #expect(idle.read(downstreamWritable: false) == .read, "no exchange, nothing to hold for")
    }

    @Test("the connection's writability reaches the downstream only during an exchange")
    func writability() {
        var machine = opened(for: Self.post)
        #expect(machine.channelWritabilityChanged() == .forwardWritability)
        var idle = pooled()
        #expect(idle.channelWritabilityChanged() == .none)
    }

    // MARK: Cancel

    @Test("cancelled mid-exchange: the connection closes, and later events do nothing")
    func cancelMidExchange() {
        var machine = opened(for: Self.post)
        _ = machine.requestBody(Self.body)
        #expect(machine.cancel() == .dropRequestAndClose)
        #expect(machine.responseHead(Self.ok, reusable: true) == .none)
        #expect(machine.channelInactive(bodyEndsHere: false) == .none)
        #expect(machine.flushDue() == .none)
    }

    // MARK: A target that closes before answering

    @Test("a fresh connection closed before an answer: the exchange fails, with no retry")
    func freshConnectionClosed() {
        var machine = opened(for: Self.get)
        _ = machine.requestEnd()
        #expect(machine.channelInactive(bodyEndsHere: false) == .fail(.closedBeforeResponse, close: false))
    }

    @Test("a pooled connection found closed before anything was answered: the request goes once more")
    func pooledConnectionClosed() {
        var machine = pooled()
        #expect(machine.start(Self.get) == .startRequest(writeHead: true, replayEnd: false, scheduleFlush: false))
        _ = machine.requestEnd()
        #expect(machine.channelInactive(bodyEndsHere: false) == .retry(ended: true, close: false))

        var reset = pooled()
        _ = reset.start(Self.put)
        #expect(reset.errorCaught() == .retry(ended: false, close: true))
    }

    @Test("the retry's own connection gets no second chance")
    func retryOnce() {
        var retry = Machine(opening: Self.get, ended: true)
        #expect(retry.connected() == .startRequest(writeHead: true, replayEnd: true, scheduleFlush: false))
        #expect(retry.requestEnd() == .writeEnd(writeHead: false, closeOutput: false))
        #expect(retry.channelInactive(bodyEndsHere: false) == .fail(.closedBeforeResponse, close: false))
    }

    @Test("no retry once the target answered anything, or once request body went out")
    func noRetryAfterProgress() {
        var answered = pooled()
        _ = answered.start(Self.get)
        answered.bytesReceived()
        #expect(answered.channelInactive(bodyEndsHere: false) == .fail(.closedBeforeResponse, close: false))

        var headed = pooled()
        _ = headed.start(Self.get)
        _ = headed.responseHead(Self.ok, reusable: true)
        #expect(headed.channelInactive(bodyEndsHere: false) == .fail(.closedDuringResponse, close: false))

        var uploading = pooled()
        _ = uploading.start(Self.put)
        _ = uploading.requestBody(Self.body)
        #expect(uploading.channelInactive(bodyEndsHere: false) == .fail(.closedBeforeResponse, close: false))
    }

    @Test("POST and DELETE are never sent twice, even when nothing of them reached the target")
    func onlyIdempotentReplayed() {
        for method in [HTTPMethod.POST, .DELETE, .PATCH, .CONNECT] {
            #expect(!Request.mayReplay(method), "\(method)")
            var machine = pooled()
            _ = machine.start(Request(mayHaveBody: false, asksUpgrade: false, mayReplay: Request.mayReplay(method)))
            _ = machine.requestEnd()
            #expect(machine.channelInactive(bodyEndsHere: false) == .fail(.closedBeforeResponse, close: false))
        }
        for method in [HTTPMethod.GET, .HEAD, .OPTIONS, .TRACE, .PUT] {
            #expect(Request.mayReplay(method), "\(method)")
        }
    }

    // MARK: Idle

    @Test("an idle connection that closes leaves the pool; one that fails is closed")
    func idleClose() {
        var machine = pooled()
        #expect(machine.channelInactive(bodyEndsHere: false) == .leavePool)
        #expect(machine.isClosed)
        var failing = pooled()
        #expect(failing.errorCaught() == .close)
        #expect(failing.channelInactive(bodyEndsHere: false) == .none)
    }

    @Test("a flush due after its exchange ended writes what is gathered and nothing more")
    func lateFlush() {
        var machine = opened(for: Self.post)
        _ = machine.requestEnd()
        _ = machine.responseHead(Self.ok, reusable: true)
        _ = machine.responseEnd(trailers: nil, inputLeft: false)
        #expect(machine.flushDue() == .flush(writeHead: false))
    }

    @Test("a pooled connection that is gone by the time a request takes it fails that request")
    func startOnClosed() {
        var machine = pooled()
        _ = machine.channelInactive(bodyEndsHere: false)
        #expect(machine.start(Self.get) == .fail(.unreachable(reason: "the connection closed"), close: false))
    }
}
