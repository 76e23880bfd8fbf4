import NIOCore
import NIOHTTP1

// The vocabulary of `TargetConnectionStateMachine`: what it knows of a request, its
// states, and the actions it asks `TargetConnection` to carry out.

extension TargetConnectionStateMachine {
    /// What the machine needs to know of a request's head.
    struct Request: Equatable {
        /// False when the request is known to have no body: its head goes at once.
        var mayHaveBody: Bool
        /// A WebSocket handshake: whatever the app answers, the connection is not reused.
        var asksUpgrade: Bool
        /// Whether the request may be sent again on a fresh connection when a pooled one
        /// turns out to be dead (see `mayReplay(_:)`).
        var mayReplay: Bool

        init(mayHaveBody: Bool, asksUpgrade: Bool, mayReplay: Bool) {
            self.mayHaveBody = mayHaveBody
            self.asksUpgrade = asksUpgrade
            self.mayReplay = mayReplay
        }

        init(_ head: ProxyRequestHead) {
            self.init(
                mayHaveBody: head.mayHaveBody, asksUpgrade: head.upgrade != nil, mayReplay: Self.mayReplay(head.method))
        }

        /// Idempotent methods (RFC 9110 §9.2.2), less DELETE: a second DELETE can answer
        /// differently, and the app under the debugger should see what the client sent
        /// once. POST, PATCH and anything unknown are never sent twice.
        static func mayReplay(_ method: HTTPMethod) -> Bool {
            switch method {
            case .GET, .HEAD, .OPTIONS, .TRACE, .PUT: return true
            default: return false
            }
        }
    }

    enum State: Equatable {
        /// Connecting for a request; body that arrives meanwhile is held by the handler.
        case opening(Opening)
        /// Connecting for a request that was cancelled: the connection joins the pool
        /// once open, and nothing is sent.
        case openingUnwanted
        /// Open and carrying nothing: in the pool.
        case idle
        /// Carrying one exchange.
        case busy(Exchange)
        /// Closing or closed: nothing more is sent or passed on.
        case closed
    }

    struct Opening: Equatable {
        var request: Request
        var heldBytes = 0
        /// The request's end arrived (its trailers are with the handler).
        var ended = false
    }

    struct Exchange: Equatable {
        var request: Request
        var sending: Sending
        var receiving = Receiving.head
        /// Taken from the pool: the target may have closed it while it was idle.
        var reused: Bool
        /// Some request body went to the connection: a retry could duplicate it.
        var bodySent = false
        /// Some response byte arrived: the target got the request.
        var answerBegun = false
        /// Whether the connection can carry another request after this one.
        var keepAlive: Bool
        /// A `read` held back while the downstream cannot take more response body.
        var readHeld = false
    }

    enum Sending: Equatable {
        /// The head waits for the first body piece, the end, or the end of the tick,
        /// so a small request leaves in one write.
        case headHeld
        /// The head is out; body may follow.
        case headSent
        case ended
    }

    enum Receiving: Equatable {
        case head
        case body
        /// The target answered 101: its bytes run to the close, and the request's end
        /// closes our output.
        case switched
    }

    enum Failure: Equatable {
        /// The connection could not be opened, or was gone before use.
        case unreachable(reason: String)
        case closedBeforeResponse
        case closedDuringResponse
        case invalidResponse(HTTP1SyntaxError)
    }

    /// What the connection does once the response has been passed on.
    enum AfterResponse: Equatable {
        /// Back to the pool for the next request.
        case release
        case close
        /// The connection is already closed.
        case nothing
    }

    enum Action: Equatable {
        case none
        /// Keep this body piece until the connection is open.
        case holdBody(ByteBuffer)
        /// The connection is open for the request: expect its response; write its head
        /// now when `writeHead` (a request known to be bodiless, announcing no body);
        /// then feed back the held body and, when `replayEnd`, the end; schedule a flush
        /// when `scheduleFlush`.
        case startRequest(writeHead: Bool, replayEnd: Bool, scheduleFlush: Bool)
        /// Frame `body`, after the held head (announcing a body) when `writeHead`; schedule
        /// a flush for the end of the tick when `scheduleFlush`.
        case writeBody(ByteBuffer, writeHead: Bool, scheduleFlush: Bool)
        /// Frame the request's end, after the held head (announcing no body) when
        /// `writeHead`; write and flush; then close the output when `closeOutput`.
        case writeEnd(writeHead: Bool, closeOutput: Bool)
        /// End of the tick: write the held head (announcing a body) when `writeHead`,
        /// then whatever is gathered, and flush.
        case flush(writeHead: Bool)
        case read
        case forwardHead(ProxyResponseHead)
        case forwardBody(ByteBuffer)
        case forwardEnd(trailers: HTTPHeaders?, then: AfterResponse)
        case forwardWritability
        /// The exchange ends with `failure`; then close the connection when `close`.
        case fail(Failure, close: Bool)
        /// The pooled connection was dead before the request reached the target: send it
        /// again on a fresh connection (`ended`: its end had arrived); close when `close`.
        case retry(ended: Bool, close: Bool)
        /// Forget the request: it was cancelled while the connection opened.
        case dropRequest
        /// Forget the request and close: it was cancelled mid-exchange.
        case dropRequestAndClose
        /// The connection opened for a cancelled request: give it to the pool.
        case joinPool
        /// The connection closed while idle: take it out of the pool.
        case leavePool
        case close
    }
}
