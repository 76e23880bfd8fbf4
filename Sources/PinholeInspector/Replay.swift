import NIOCore
import NIOHTTP1
import PinholeCore

/// What an edit-and-replay changes; nil keeps the original's.
public struct ReplayChanges: Sendable {
    public var method: String?
    public var path: String?
    /// All request headers, replacing the original's.
    public var headers: [(name: String, value: String)]?
    public var body: ByteBuffer?

    public init(
        method: String? = nil, path: String? = nil, headers: [(name: String, value: String)]? = nil,
        body: ByteBuffer? = nil
    ) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
    }
}

public enum ReplayError: Error, Sendable, CustomStringConvertible, Equatable {
    case notFound(id: Int)
    /// Only the first bytes of the body were kept; replaying them would send another request.
    case bodyNotKept(id: Int, total: Int, kept: Int)
    case invalid(String)
    /// The agent has not started forwarding yet, so there is no target to send to.
    case noTarget

    public var description: String {
        switch self {
        case .notFound(let id): return "no request #\(id) (cleared, or pushed out of the ring)"
        case .bodyNotKept(let id, let total, let kept):
            return "request #\(id) had a body of \(total) bytes and only the first \(kept) were kept; "
                + "send a body with the replay to replace it"
        case .invalid(let reason): return reason
        case .noTarget: return "the agent has no target yet"
        }
    }
}

extension Inspector {
    /// Sends request `id` to the target again, with `changes`, straight from the agent.
    /// The replay is captured like any request, marked as a replay of `id`. Returns its id
    /// at once, and a future that completes when its response is over. Call it on
    /// `eventLoop`, which carries the replay.
    public func replay(
        _ id: Int, changes: ReplayChanges = ReplayChanges(), on eventLoop: any EventLoop
    ) throws(ReplayError) -> (id: Int, done: EventLoopFuture<Void>) {
        eventLoop.preconditionInEventLoop()
        guard let target else { throw .noTarget }
        guard let original = store.record(id) else { throw .notFound(id: id) }
        let body: ByteBuffer
        if let edited = changes.body {
            body = edited
        } else if original.requestBody.isTruncated {
            throw .bodyNotKept(
                id: id, total: original.requestBody.totalBytes, kept: original.requestBody.kept.readableBytes)
        } else {
            body = original.requestBody.kept
        }
        let head = try Self.head(replaying: original, changes: changes, bodyBytes: body.readableBytes)
        let done = eventLoop.makePromise(of: Void.self)
        let upstream: CapturingExchange
        do throws(ExchangeError) {
            upstream = try target.start(head, downstream: ReplayDownstream(done: done), on: eventLoop, replayOf: id)
        } catch {
            done.succeed(())
            throw .invalid(error.description)
        }
        if body.readableBytes > 0 { upstream.sendBody(body) }
        upstream.sendEnd(trailers: original.requestTrailers)
        let newID = upstream.id
        return (newID, done.futureResult)
    }

    static func head(
        replaying original: CapturedRequest, changes: ReplayChanges, bodyBytes: Int
    ) throws(ReplayError) -> ProxyRequestHead {
        let methodName = changes.method?.uppercased() ?? original.method
        guard !methodName.isEmpty, methodName.allSatisfy({ $0.isLetter }) else {
            throw .invalid("'\(methodName)' is not an HTTP method")
        }
        let path = changes.path ?? original.path
        guard path.hasPrefix("/"), !path.contains(where: { $0 == " " || $0.isNewline }) else {
            throw .invalid("the path must start with / and contain no spaces: '\(path)'")
        }
        var headers = HTTPHeaders()
        if let edited = changes.headers {
            for (name, value) in edited {
                guard !name.isEmpty, !name.contains(where: { $0 == ":" || $0.isWhitespace }),
                    !value.contains(where: \.isNewline)
                else { throw .invalid("'\(name)' is not a header field a request can carry") }
                // Host is the authority, and framing is Pinhole's to decide.
                if ["host", "transfer-encoding", "connection"].contains(name.lowercased()) { continue }
                headers.add(name: name, value: value)
            }
        } else {
            headers = original.requestHeaders
        }
        if headers.contains(name: "content-length") || bodyBytes > 0 {
            headers.replaceOrAdd(name: "content-length", value: String(bodyBytes))
        }
        return ProxyRequestHead(
            method: HTTPMethod(rawValue: methodName), path: path, authority: original.authority,
            scheme: original.scheme, headers: headers, mayHaveBody: bodyBytes > 0,
            clientProtocol: original.clientProtocol)
    }
}

/// The replay's own downstream: takes the response as fast as it comes (the capture
/// keeps what the inspector shows) and says when it is over.
private final class ReplayDownstream: ExchangeDownstream {
    private let done: EventLoopPromise<Void>

    init(done: EventLoopPromise<Void>) {
        self.done = done
    }

    var canTakeResponseBody: Bool { true }
    func exchangeReceivedHead(_ head: ProxyResponseHead) {}
    func exchangeReceivedBody(_ body: ByteBuffer) {}
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { done.succeed(()) }
    func exchangeFailed(_ error: ExchangeError) { done.succeed(()) }
    func exchangeUpstreamWritabilityChanged() {}
}
