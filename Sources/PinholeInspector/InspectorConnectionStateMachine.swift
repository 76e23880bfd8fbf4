import NIOCore
import NIOHTTP1

/// The lifecycle of one connection to the inspector, on its event loop. The handler
/// feeds it what happens and carries out the `Action` it returns.
///
/// One request at a time: NIO's `HTTPServerPipelineHandler` holds pipelined requests back
/// until the answer before them is written, so a head that arrives while an answer is
/// still owed breaks that promise and closes the connection. Each request is read whole
/// (a replay's edits are small), up to `bodyLimit`: past it, a 413 goes out at once and
/// the connection closes once the client has finished sending. An answer closes the
/// connection when the request asked for it (`Connection: close`, HTTP/1.0) or the server
/// is stopping. The live feed keeps its connection for good; while the client does not
/// read, news waits in the feed (which keeps ids, not text) instead of in the socket.
struct InspectorConnectionStateMachine {
    /// What the request needs from its answer's head.
    struct Exchange: Equatable {
        var version: HTTPVersion
        /// Whether the connection stays open after the answer.
        var keepAlive: Bool

        init(_ head: HTTPRequestHead) {
            version = head.version
            keepAlive = head.isKeepAlive
        }
    }

    enum State {
        /// Between requests: the next thing expected is a request head.
        case idle
        case reading(HTTPRequestHead, body: ByteBuffer, Exchange)
        /// The body passed the limit and was refused; the rest of it is read and dropped.
        case discarding
        /// The request went to the API: its answer is being made (a replay may take long).
        case answering(Exchange)
        /// The live feed: a response that never ends.
        case streaming(Stream)
        /// The last answer is being written; the connection closes after it.
        case closing
        case closed
    }

    struct Stream: Equatable {
        /// The socket takes more: the feed may write.
        var writable = true
        /// News came while the socket was full: send it once it drains.
        var newsHeld = false
        var keepAlive: Bool
    }

    enum AfterAnswer: Equatable {
        case keepOpen
        /// Close once the answer is written.
        case close
        /// The answer says `Connection: close`, but the client is still sending: closing
        /// now could reset the connection before it reads the answer. `requestEnd` closes.
        case closeAfterRequest
    }

    enum Action {
        case none
        /// The request is whole: route it, then report `answered` or `streamStarted`.
        case route(HTTPRequestHead, ByteBuffer)
        /// Write this answer, then keep the connection or close it.
        case write(APIResponse, version: HTTPVersion, then: AfterAnswer)
        /// Write the feed's head and start the feed.
        case startFeed(version: HTTPVersion)
        /// Let the feed write what it gathered.
        case sendFeed
        /// Stop the feed, end its response, then close.
        case endFeed
        /// Close now; stop the feed first when `stopFeed`.
        case close(stopFeed: Bool)
        /// The connection is gone: stop the feed.
        case stopFeed
    }

    /// Larger request bodies (a replay's edited body) are refused with a 413.
    let bodyLimit: Int
    private(set) var state = State.idle
    /// The server is stopping: answer what is asked, then close.
    private var stopping = false

    init(bodyLimit: Int) {
        self.bodyLimit = bodyLimit
    }

    mutating func requestHead(_ head: HTTPRequestHead) -> Action {
        switch state {
        case .idle:
            var exchange = Exchange(head)
            if stopping { exchange.keepAlive = false }
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), length > bodyLimit {
                return refuseTooLarge(exchange)
            }
            state = .reading(head, body: ByteBuffer(), exchange)
            return .none
        case .reading, .discarding, .answering:
            // HTTPServerPipelineHandler holds a pipelined request until the answer before it is
            // written: one arriving now means that promise broke. Nothing sensible follows.
            state = .closed
            return .close(stopFeed: false)
        case .streaming:
            state = .closed
            return .close(stopFeed: true)
        case .closing, .closed:
            return .none
        }
    }

    mutating func requestBody(_ part: inout ByteBuffer) -> Action {
        guard case .reading(let head, var body, let exchange) = state else { return .none }
        if body.readableBytes + part.readableBytes > bodyLimit { return refuseTooLarge(exchange) }
        state = .idle  // drop the state's reference, so the write below does not copy the body
        body.writeBuffer(&part)
        state = .reading(head, body: body, exchange)
        return .none
    }

    mutating func requestEnd() -> Action {
        switch state {
        case .reading(let head, let body, let exchange):
            state = .answering(exchange)
            return .route(head, body)
        case .discarding:
            // The refusal went out with `Connection: close`; the client has now stopped sending.
            state = .closed
            return .close(stopFeed: false)
        case .idle, .answering, .streaming, .closing, .closed:
            return .none
        }
    }

    /// The answer to the request being answered, now or after a replay's response.
    mutating func answered(_ response: APIResponse) -> Action {
        guard case .answering(let exchange) = state else { return .none }
        let close = !exchange.keepAlive || stopping
        state = close ? .closing : .idle
        return .write(response, version: exchange.version, then: close ? .close : .keepOpen)
    }

    /// The request being answered asked for the live feed.
    mutating func streamStarted() -> Action {
        guard case .answering(let exchange) = state else { return .none }
        if stopping {
            state = .closing
            return .write(
                .error(.serviceUnavailable, "the inspector is stopping"), version: exchange.version, then: .close)
        }
        state = .streaming(Stream(keepAlive: exchange.keepAlive))
        return .startFeed(version: exchange.version)
    }

    /// The feed gathered news and would write it.
    mutating func feedDue() -> Action {
        guard case .streaming(var stream) = state else { return .none }
        guard stream.writable else {
            stream.newsHeld = true
            state = .streaming(stream)
            return .none
        }
        return .sendFeed
    }

    mutating func writabilityChanged(isWritable: Bool) -> Action {
        guard case .streaming(var stream) = state else { return .none }
        let send = isWritable && stream.newsHeld
        stream.writable = isWritable
        if send { stream.newsHeld = false }
        state = .streaming(stream)
        return send ? .sendFeed : .none
    }

    /// A parse error (HTTPServerProtocolErrorHandler has answered 400) or an I/O error.
    mutating func errorCaught() -> Action {
        switch state {
        case .streaming:
            state = .closed
            return .close(stopFeed: true)
        case .closed:
            return .none
        case .idle, .reading, .discarding, .answering, .closing:
            state = .closed
            return .close(stopFeed: false)
        }
    }

    /// The server is stopping: close what is idle, end the feed, and let answers owed go
    /// out before closing (a replay held at a breakpoint is not cut).
    mutating func stopRequested() -> Action {
        stopping = true
        switch state {
        case .idle:
            state = .closed
            return .close(stopFeed: false)
        case .reading(let head, let body, var exchange):
            exchange.keepAlive = false
            state = .reading(head, body: body, exchange)
            return .none
        case .answering(var exchange):
            exchange.keepAlive = false
            state = .answering(exchange)
            return .none
        case .streaming:
            state = .closing
            return .endFeed
        case .discarding, .closing, .closed:
            return .none
        }
    }

    mutating func channelClosed() -> Action {
        defer { state = .closed }
        if case .streaming = state { return .stopFeed }
        return .none
    }

    private mutating func refuseTooLarge(_ exchange: Exchange) -> Action {
        state = .discarding
        return .write(
            .error(.payloadTooLarge, "the inspector takes request bodies up to \(Self.describe(bodyLimit))"),
            version: exchange.version, then: .closeAfterRequest)
    }

    private static func describe(_ bytes: Int) -> String {
        bytes >= 1 << 20 && bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
    }
}
