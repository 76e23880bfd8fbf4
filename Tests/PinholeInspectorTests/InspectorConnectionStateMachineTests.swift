import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import PinholeInspector

/// The inspector connection's lifecycle, event by event, without a channel.
@Suite("Inspector connection state machine")
struct InspectorConnectionStateMachineTests {
    typealias Machine = InspectorConnectionStateMachine

    static func head(
        _ method: HTTPMethod = .GET, _ uri: String = "/api/requests", version: HTTPVersion = .http1_1,
        _ headers: [(String, String)] = []
    ) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }

    static let ok = APIResponse(status: .ok, contentType: "text/plain", body: ByteBuffer(string: "ok"))

    /// Feeds a whole request and returns what it was routed as.
    static func request(
        _ machine: inout Machine, _ head: HTTPRequestHead, body: String? = nil
    ) -> (head: HTTPRequestHead, body: String)? {
        #expect(machine.requestHead(head).isNone)
        if let body {
            var part = ByteBuffer(string: body)
            #expect(machine.requestBody(&part).isNone)
        }
        guard case .route(let routed, let routedBody) = machine.requestEnd() else { return nil }
        return (routed, String(buffer: routedBody))
    }

    @Test("keep-alive: each request is routed whole, answered, and the connection waits for the next")
    func keepAlive() throws {
        var machine = Machine(bodyLimit: 1024)
        for uri in ["/api/requests/1/replay", "/api/requests/2/replay"] {
            var first = ByteBuffer(string: "{\"method\":")
            var second = ByteBuffer(string: "\"PUT\"}")
            #expect(machine.requestHead(Self.head(.POST, uri)).isNone)
            #expect(machine.requestBody(&first).isNone)
            #expect(machine.requestBody(&second).isNone)
            guard case .route(let head, let body) = machine.requestEnd() else {
                Issue.record("not routed")
                return
            }
            #expect(head.uri == uri && String(buffer: body) == #"{"method":"PUT"}"#)
            guard case .write(let response, let version, let then) = machine.answered(Self.ok) else {
                Issue.record("not written")
                return
            }
            #expect(response.status == .ok && version == .http1_1 && then == .keepOpen)
            #expect(machine.state.isIdle)
        }
    }

    @Test("Connection: close and HTTP/1.0 without keep-alive close once the answer is written")
    func closeAfterAnswer() {
        for head in [
            Self.head(.GET, "/", [("connection", "close")]), Self.head(.GET, "/", version: .http1_0),
        ] {
            var machine = Machine(bodyLimit: 1024)
            #expect(Self.request(&machine, head) != nil)
            guard case .write(_, let version, .close) = machine.answered(Self.ok) else {
                Issue.record("\(head) was not answered with a close")
                continue
            }
            #expect(version == head.version, "the answer speaks the request's version")
            #expect(machine.requestHead(Self.head()).isNone, "a request after the last one was taken")
        }
        var machine = Machine(bodyLimit: 1024)
        _ = Self.request(&machine, Self.head(.GET, "/", version: .http1_0, [("connection", "keep-alive")]))
        guard case .write(_, .http1_0, .keepOpen) = machine.answered(Self.ok) else {
            Issue.record("an HTTP/1.0 keep-alive request lost its connection")
            return
        }
    }

    @Test("a replay's late answer is written when it comes; nothing is routed meanwhile")
    func lateAnswer() {
        var machine = Machine(bodyLimit: 1024)
        _ = Self.request(&machine, Self.head(.POST, "/api/requests/3/replay?wait=1"))
        #expect(machine.feedDue().isNone)
        #expect(machine.writabilityChanged(isWritable: false).isNone)
        guard case .write(_, _, .keepOpen) = machine.answered(Self.ok) else {
            Issue.record("the late answer was not written")
            return
        }
        #expect(machine.answered(Self.ok).isNone, "a second answer to one request was written")
    }

    @Test("a head while an answer is owed breaks the pipeline's promise: the connection closes")
    func pipelinedHeadRefused() {
        var machine = Machine(bodyLimit: 1024)
        _ = Self.request(&machine, Self.head(.POST, "/api/requests/3/replay?wait=1"))
        guard case .close(stopFeed: false) = machine.requestHead(Self.head()) else {
            Issue.record("a pipelined head was taken while answering")
            return
        }
        #expect(machine.answered(Self.ok).isNone, "an answer went out on a closed connection")

        var streaming = Machine(bodyLimit: 1024)
        _ = Self.request(&streaming, Self.head(.GET, "/api/events"))
        _ = streaming.streamStarted()
        guard case .close(stopFeed: true) = streaming.requestHead(Self.head()) else {
            Issue.record("a head on the feed's connection did not close it and stop the feed")
            return
        }
    }

    @Test("a body past the limit is refused at once with 413, naming the limit, and closed when it ends")
    func bodyTooLarge() {
        var machine = Machine(bodyLimit: 8)
        #expect(machine.requestHead(Self.head(.POST, "/api/requests/1/replay")).isNone)
        var first = ByteBuffer(string: "12345")
        #expect(machine.requestBody(&first).isNone)
        var second = ByteBuffer(string: "6789")
        guard case .write(let response, _, .closeAfterRequest) = machine.requestBody(&second) else {
            Issue.record("the body past the limit was not refused at once")
            return
        }
        #expect(response.status == .payloadTooLarge)
        #expect(String(buffer: response.body).contains("up to 8 bytes"))
        var more = ByteBuffer(string: "more")
        #expect(machine.requestBody(&more).isNone, "the rest of the body is dropped")
        guard case .close(stopFeed: false) = machine.requestEnd() else {
            Issue.record("the connection stayed open after a refused body")
            return
        }
    }

    @Test("a Content-Length past the limit is refused before any body")
    func declaredTooLarge() {
        var machine = Machine(bodyLimit: 2 << 20)
        let head = Self.head(.POST, "/api/requests/1/replay", [("content-length", String(3 << 20))])
        guard case .write(let response, _, .closeAfterRequest) = machine.requestHead(head) else {
            Issue.record("a declared body past the limit was not refused")
            return
        }
        #expect(response.status == .payloadTooLarge && String(buffer: response.body).contains("up to 2 MiB"))
        #expect(machine.requestEnd().isClose)
    }

    @Test("the live feed writes while the socket drains, holds news while it is full, and sends it on drain")
    func feedBackpressure() {
        var machine = Machine(bodyLimit: 1024)
        _ = Self.request(&machine, Self.head(.GET, "/api/events"))
        guard case .startFeed(.http1_1) = machine.streamStarted() else {
            Issue.record("the feed did not start")
            return
        }
        #expect(machine.feedDue().isSendFeed)
        #expect(machine.writabilityChanged(isWritable: false).isNone)
        #expect(machine.feedDue().isNone, "the feed wrote into a full socket")
        #expect(machine.feedDue().isNone)
        #expect(machine.writabilityChanged(isWritable: true).isSendFeed, "held news was not sent on drain")
        #expect(machine.writabilityChanged(isWritable: false).isNone)
        #expect(machine.writabilityChanged(isWritable: true).isNone, "nothing was held, yet a send came")
        #expect(machine.feedDue().isSendFeed)
        #expect(machine.answered(Self.ok).isNone, "an answer was written into the feed's stream")
    }

    @Test("the feed stops when the page goes away or an error ends the connection")
    func feedEnds() {
        var closed = Machine(bodyLimit: 1024)
        _ = Self.request(&closed, Self.head(.GET, "/api/events"))
        _ = closed.streamStarted()
        #expect(closed.channelClosed().isStopFeed)
        #expect(closed.feedDue().isNone)
        #expect(closed.channelClosed().isNone)

        var failed = Machine(bodyLimit: 1024)
        _ = Self.request(&failed, Self.head(.GET, "/api/events"))
        _ = failed.streamStarted()
        guard case .close(stopFeed: true) = failed.errorCaught() else {
            Issue.record("an error did not stop the feed and close")
            return
        }
        #expect(failed.channelClosed().isNone, "the feed was stopped twice")
    }

    @Test("errors close the connection in every state but closed")
    func errors() {
        var idle = Machine(bodyLimit: 1024)
        #expect(idle.errorCaught().isClose)
        #expect(idle.errorCaught().isNone)

        var reading = Machine(bodyLimit: 1024)
        _ = reading.requestHead(Self.head(.POST, "/api/requests/1/replay"))
        #expect(reading.errorCaught().isClose)
        #expect(reading.requestEnd().isNone, "a request was routed after its connection failed")
    }

    @Test("stopping: idle closes now, the feed ends, an answer owed goes out first and then closes")
    func stop() {
        var idle = Machine(bodyLimit: 1024)
        #expect(idle.stopRequested().isClose)

        var feeding = Machine(bodyLimit: 1024)
        _ = Self.request(&feeding, Self.head(.GET, "/api/events"))
        _ = feeding.streamStarted()
        #expect(feeding.stopRequested().isEndFeed)
        #expect(feeding.channelClosed().isNone, "the ended feed was stopped again")

        var answering = Machine(bodyLimit: 1024)
        _ = Self.request(&answering, Self.head(.POST, "/api/requests/1/replay?wait=1"))
        #expect(answering.stopRequested().isNone, "a replay held at a breakpoint was cut by a stop")
        guard case .write(_, _, .close) = answering.answered(Self.ok) else {
            Issue.record("the owed answer did not go out with a close")
            return
        }

        var reading = Machine(bodyLimit: 1024)
        _ = reading.requestHead(Self.head(.POST, "/api/requests/1/replay"))
        #expect(reading.stopRequested().isNone)
        #expect(reading.requestEnd().isRoute)
        guard case .write(_, _, .close) = reading.answered(Self.ok) else {
            Issue.record("a request read during the stop kept its connection")
            return
        }

        var late = Machine(bodyLimit: 1024)
        _ = Self.request(&late, Self.head(.GET, "/api/events"))
        _ = late.stopRequested()
        guard case .write(let refusal, _, .close) = late.streamStarted() else {
            Issue.record("a feed started while stopping")
            return
        }
        #expect(refusal.status == .serviceUnavailable)
    }
}

extension InspectorConnectionStateMachine.Action {
    var isNone: Bool { if case .none = self { true } else { false } }
    var isClose: Bool { if case .close = self { true } else { false } }
    var isRoute: Bool { if case .route = self { true } else { false } }
    var isSendFeed: Bool { if case .sendFeed = self { true } else { false } }
    var isStopFeed: Bool { if case .stopFeed = self { true } else { false } }
    var isEndFeed: Bool { if case .endFeed = self { true } else { false } }
}

extension InspectorConnectionStateMachine.State {
    var isIdle: Bool { if case .idle = self { true } else { false } }
}

/// The live feed's gathering of changes, on an embedded loop.
@Suite("Inspector live feed")
struct EventFeedTests {
    @Test("news waits while the page does not read; past the bound it becomes one hello that reloads the list")
    func heldNews() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector()
        let scripted = InspectorStoreTests.ScriptedTarget()
        let target = inspector.capture(scripted)
        var due = 0
        var sent: [String] = []
        let feed = EventFeed(
            store: inspector.store, eventLoop: loop, maxPending: 3, due: { due += 1 },
            send: { sent.append(String(buffer: $0)) })
        feed.start()
        #expect(sent == ["retry: 1000\n" + EventFeed.hello])
        func request(_ path: String) throws {
            let upstream = try target.startExchange(
                InspectorStoreTests.head(path), downstream: InspectorStoreTests.SinkDownstream(), on: loop)
            upstream.sendEnd(trailers: nil)
        }

        try request("/one")
        loop.advanceTime(by: EventFeed.interval)
        #expect(due == 1, "the feed did not ask to write")
        feed.flush()
        #expect(sent.count == 2 && sent[1].contains(#""path":"/one""#))

        // The page stops reading: the handler does not flush. Changes gather, scheduling nothing more.
        try request("/two")
        loop.advanceTime(by: EventFeed.interval)
        #expect(due == 2)
        try request("/three")
        loop.advanceTime(by: EventFeed.interval * 4)
        #expect(due == 2, "held news scheduled more work")
        feed.flush()
        #expect(sent.count == 3 && sent[2].contains("/two") && sent[2].contains("/three"))

        for index in 0..<10 { try request("/many/\(index)") }
        feed.flush()
        #expect(sent.count == 4 && sent[3] == EventFeed.hello, "past the bound, the page reloads instead")
        feed.stop()
    }
}
