import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import PinholeTLS

/// The application under the debugger, for end-to-end tests: a small HTTP/1.1 server
/// on 127.0.0.1:0.
///
/// - `GET /hello` answers "Hello, world!".
/// - `GET /headers` answers the request headers it got, one `name: value` per line.
/// - `POST /echo` streams the request body back.
/// - `POST /upload` reads the body and answers `<bytes> <sha256>`.
/// - `POST /early` answers 413 at once and reads none of the body.
/// - `GET /download?bytes=N` streams N bytes of `PatternStream`, respecting backpressure.
/// - `GET /events` sends one server-sent event, then a second one and the end only
///   after `releaseEvents()`.
/// - `GET /slow?ms=N` answers after N milliseconds.
/// - `GET /close` answers "Hello, world!" with `Connection: close`, and closes.
public final class LocalApp: Sendable {
    public let channel: any Channel
    private let eventRelease: NIOLockedValueBox<[EventLoopPromise<Void>]>
    private let released: NIOLockedValueBox<Bool>
    private let seen: NIOLockedValueBox<Int>

    public var port: Int { channel.localAddress!.port! }

    /// Requests whose head has arrived so far.
    public var requestsSeen: Int { seen.withLockedValue { $0 } }

    public static func start() async throws -> LocalApp {
        let releases = NIOLockedValueBox<[EventLoopPromise<Void>]>([])
        let released = NIOLockedValueBox(false)
        let seen = NIOLockedValueBox(0)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // Tests open hundreds of connections at once; a short accept queue would make
            // the kernel drop SYNs, and a loaded machine turn the retries into 502s.
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        LocalAppHandler(releases: releases, released: released, seen: seen))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return LocalApp(channel: channel, releases: releases, released: released, seen: seen)
    }

    private init(
        channel: any Channel, releases: NIOLockedValueBox<[EventLoopPromise<Void>]>, released: NIOLockedValueBox<Bool>,
        seen: NIOLockedValueBox<Int>
    ) {
        self.channel = channel
        self.eventRelease = releases
        self.released = released
        self.seen = seen
    }

    /// Lets every `/events` response send its second event and finish.
    public func releaseEvents() {
        released.withLockedValue { $0 = true }
        let waiting = eventRelease.withLockedValue { promises in
            defer { promises.removeAll() }
            return promises
        }
        waiting.forEach { $0.succeed(()) }
    }

    public func stop() async {
        try? await channel.close()
    }
}

private final class LocalAppHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let releases: NIOLockedValueBox<[EventLoopPromise<Void>]>
    private let released: NIOLockedValueBox<Bool>
    private let seen: NIOLockedValueBox<Int>
    private var head: HTTPRequestHead?
    private var uploadHash: SHA256Hasher?
    private var uploadBytes = 0
    private var download: PatternStream?
    private var pumping = false

    init(
        releases: NIOLockedValueBox<[EventLoopPromise<Void>]>, released: NIOLockedValueBox<Bool>,
        seen: NIOLockedValueBox<Int>
    ) {
        self.releases = releases
        self.released = released
        self.seen = seen
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            seen.withLockedValue { $0 += 1 }
            if head.uri.hasPrefix("/echo") {
                context.writeAndFlush(
                    wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok))), promise: nil)
            } else if head.uri.hasPrefix("/early") {
                // Answers 413 at once and reads none of the body: an app refusing an upload.
                self.head = nil
                send(.payloadTooLarge, "too large", version: head.version, context: context)
            } else if head.uri.hasPrefix("/upload") {
                uploadHash = SHA256Hasher()
                uploadBytes = 0
            }
        case .body(let body):
            guard let head else { return }
            if head.uri.hasPrefix("/echo") {
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            } else if let uploadHash {
                uploadHash.update(body)
                uploadBytes += body.readableBytes
            }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
        let query = head.uri.split(separator: "?").dropFirst().first.map(String.init) ?? ""
        let number = query.split(separator: "=").last.flatMap { Int($0) } ?? 0
        switch path {
        case "/echo":
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        case "/upload":
            let digest = uploadHash?.finalize() ?? ""
            uploadHash = nil
            send(.ok, "\(uploadBytes) \(digest)", version: head.version, context: context)
        case "/headers":
            send(
                .ok, head.headers.map { "\($0.name.lowercased()): \($0.value)" }.joined(separator: "\n"),
                version: head.version, context: context)
        case "/download":
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: String(number))
            context.writeAndFlush(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                promise: nil)
            download = PatternStream(totalBytes: number)
            pump(context: context)
        case "/events":
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: "text/event-stream")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))),
                promise: nil)
            context.writeAndFlush(
                wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: first\n\n")))), promise: nil)
            let promise = context.eventLoop.makePromise(of: Void.self)
            let alreadyReleased = released.withLockedValue { $0 }
            if alreadyReleased { promise.succeed(()) } else { releases.withLockedValue { $0.append(promise) } }
            promise.futureResult.assumeIsolated().whenSuccess {
                context.write(
                    self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "data: second\n\n")))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        case "/close":
            send(.ok, "Hello, world!", version: head.version, context: context, close: true)
        case "/slow":
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(number))) {
                self.send(.ok, "slept \(number) ms", version: head.version, context: context)
            }
        default:
            send(.ok, "Hello, world!", version: head.version, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context: context)
        context.fireChannelWritabilityChanged()
    }

    /// Writes the download while the channel takes it. Writing can change writability,
    /// which calls back in here, so nested calls return at once and this loop re-checks.
    private func pump(context: ChannelHandlerContext) {
        guard download != nil, !pumping else { return }
        pumping = true
        defer { pumping = false }
        repeat {
            while context.channel.isWritable, let chunk = download?.next(allocator: context.channel.allocator) {
                context.write(wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
            }
            if download?.isFinished ?? true {
                download = nil
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                return
            }
            context.flush()
        } while context.channel.isWritable
    }

    private func send(
        _ status: HTTPResponseStatus, _ text: String, version: HTTPVersion, context: ChannelHandlerContext,
        close: Bool = false
    ) {
        let body = ByteBuffer(string: text)
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: String(body.readableBytes))
        headers.add(name: "content-type", value: "text/plain")
        if close { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        guard close else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}
