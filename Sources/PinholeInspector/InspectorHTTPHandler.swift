import NIOCore
import NIOHTTP1

/// One connection to the inspector: feeds what happens to its state machine and carries
/// out the actions it returns: routes whole requests to the API (or turns the connection
/// into the live feed), writes answers, closes.
final class InspectorHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    /// Larger request bodies (a replay's edited body) are refused with a 413.
    static let bodyLimit = 16 << 20

    /// Sent down each connection's pipeline when the server stops.
    struct Stop {}

    private let api: InspectorAPI
    private let access: InspectorAccess
    private var machine: InspectorConnectionStateMachine
    private var feed: EventFeed?

    init(api: InspectorAPI, access: InspectorAccess, bodyLimit: Int = InspectorHTTPHandler.bodyLimit) {
        self.api = api
        self.access = access
        self.machine = InspectorConnectionStateMachine(bodyLimit: bodyLimit)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): perform(machine.requestHead(head), context: context)
        case .body(var part): perform(machine.requestBody(&part), context: context)
        case .end: perform(machine.requestEnd(), context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        perform(machine.writabilityChanged(isWritable: context.channel.isWritable), context: context)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is Stop {
            perform(machine.stopRequested(), context: context)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        perform(machine.errorCaught(), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        perform(machine.channelClosed(), context: context)
        context.fireChannelInactive()
    }

    private func perform(_ action: InspectorConnectionStateMachine.Action, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .route(let head, let body):
            route(APIRequest(head: head, body: body), context: context)
        case .write(let response, let version, let then):
            write(response, version: version, then: then, context: context)
        case .startFeed(let version):
            startFeed(version: version, context: context)
        case .sendFeed:
            feed?.flush()
        case .endFeed:
            stopFeed()
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                context.close(promise: nil)
            }
        case .close(let stopFeed):
            if stopFeed { self.stopFeed() }
            context.close(promise: nil)
        case .stopFeed:
            stopFeed()
        }
    }

    private func route(_ request: APIRequest, context: ChannelHandlerContext) {
        if case .refused(let reason) = access.check(method: request.method, headers: request.headers) {
            perform(machine.answered(.error(.forbidden, reason)), context: context)
            return
        }
        if request.method == .GET, request.path == "/api/events" {
            perform(machine.streamStarted(), context: context)
            return
        }
        switch api.respond(to: request, on: context.eventLoop) {
        case .now(let response):
            perform(machine.answered(response), context: context)
        case .later(let future):
            future.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let response): self.perform(self.machine.answered(response), context: context)
                case .failure(let error):
                    self.perform(self.machine.answered(.error(.internalServerError, "\(error)")), context: context)
                }
            }
        }
    }

    private func write(
        _ response: APIResponse, version: HTTPVersion, then: InspectorConnectionStateMachine.AfterAnswer,
        context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.readableBytes))
        headers.add(name: "cache-control", value: "no-store")
        // The page is ours alone: no framing by other pages, no scripts from elsewhere.
        headers.add(name: "x-frame-options", value: "DENY")
        headers.add(name: "x-content-type-options", value: "nosniff")
        for (name, value) in response.headers { headers.add(name: name, value: value) }
        if then != .keepOpen {
            headers.add(name: "connection", value: "close")
        } else if version.major == 1, version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))),
            promise: nil)
        if response.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if then == .close { written.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }

    // MARK: The live feed

    private func startFeed(version: HTTPVersion, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/event-stream")
        headers.add(name: "cache-control", value: "no-store")
        context.writeAndFlush(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: .ok, headers: headers))), promise: nil)
        let feed = EventFeed(
            store: api.inspector.store, eventLoop: context.eventLoop,
            due: { [weak self] in
                guard let self else { return }
                self.perform(self.machine.feedDue(), context: context)
            },
            send: { [weak self] text in
                guard let self else { return }
                context.writeAndFlush(self.wrapOutboundOut(.body(.byteBuffer(text))), promise: nil)
            })
        self.feed = feed
        feed.start()
    }

    private func stopFeed() {
        feed?.stop()
        feed = nil
    }
}
