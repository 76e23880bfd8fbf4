import NIOCore
import NIOHTTP1

/// One connection to the inspector: reads each request whole (edits for a replay are
/// small), checks who asks, and answers from the API, or turns the connection into the
/// live feed.
final class InspectorHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case reading(HTTPRequestHead, ByteBuffer)
        /// The body passed the limit: what follows is dropped until the end, then refused.
        case discarding(HTTPRequestHead)
        /// Waiting for a replay's response before answering.
        case answering
        case feeding(EventFeed)
    }

    /// Larger request bodies (a replay's edited body) are refused with a 413.
    static let bodyLimit = 16 << 20

    private let api: InspectorAPI
    private let access: InspectorAccess
    private var state = State.idle

    init(api: InspectorAPI, access: InspectorAccess) {
        self.api = api
        self.access = access
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            state = .reading(head, context.channel.allocator.buffer(capacity: 0))
        case (.body(var part), .reading(let head, var body)):
            if body.readableBytes + part.readableBytes > Self.bodyLimit {
                state = .discarding(head)
            } else {
                state = .idle  // drop the reference, so the write below does not copy
                body.writeBuffer(&part)
                state = .reading(head, body)
            }
        case (.end, .reading(let head, let body)):
            handle(APIRequest(head: head, body: body), keepAlive: head.isKeepAlive, context: context)
        case (.end, .discarding(let head)):
            state = .idle
            write(
                .error(.payloadTooLarge, "the inspector takes request bodies up to \(Self.bodyLimit >> 20) MiB"),
                keepAlive: head.isKeepAlive, context: context)
        default:
            break
        }
    }

    private func handle(_ request: APIRequest, keepAlive: Bool, context: ChannelHandlerContext) {
        if case .refused(let reason) = access.check(method: request.method, headers: request.headers) {
            state = .idle
            write(.error(.forbidden, reason), keepAlive: keepAlive, context: context)
            return
        }
        if request.method == .GET, request.path == "/api/events" {
            startFeed(context: context)
            return
        }
        switch api.respond(to: request, on: context.eventLoop) {
        case .now(let response):
            state = .idle
            write(response, keepAlive: keepAlive, context: context)
        case .later(let future):
            state = .answering
            future.assumeIsolated().whenComplete { result in
                self.state = .idle
                switch result {
                case .success(let response): self.write(response, keepAlive: keepAlive, context: context)
                case .failure(let error):
                    self.write(.error(.internalServerError, "\(error)"), keepAlive: keepAlive, context: context)
                }
            }
        }
    }

    private func write(_ response: APIResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.readableBytes))
        headers.add(name: "cache-control", value: "no-store")
        // The page is ours alone: no framing by other pages, no scripts from elsewhere.
        headers.add(name: "x-frame-options", value: "DENY")
        headers.add(name: "x-content-type-options", value: "nosniff")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))),
            promise: nil)
        if response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    // MARK: The live feed

    private func startFeed(context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream")
        headers.add(name: "cache-control", value: "no-store")
        context.writeAndFlush(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        let feed = EventFeed(store: api.inspector.store, eventLoop: context.eventLoop) { [weak self] text in
            guard let self, case .feeding = self.state else { return }
            context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        }
        state = .feeding(feed)
        feed.start()
    }

    func channelInactive(context: ChannelHandlerContext) {
        if case .feeding(let feed) = state { feed.stop() }
        state = .idle
        context.fireChannelInactive()
    }
}
