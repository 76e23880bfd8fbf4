import Logging
import NIOCore
import PinholeCore
import PinholeHTTP2

/// The first handler of a public connection that may speak HTTP/1.1 or HTTP/2: it holds
/// the first bytes until `PrefaceSniffer` decides, then puts the protocol's handler in
/// its place and passes them on, as `PublicProtocolStateMachine` says. A client that
/// sends nothing is closed after `silenceLimit`, as the HTTP/1.1 handler would.
final class PublicProtocolHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var machine = PublicProtocolStateMachine()
    private let http1: PublicRequestHandler
    private let makeHTTP2: (ChannelHandlerContext) -> [any ChannelHandler]
    private let silenceLimit: TimeAmount
    private var silence: Scheduled<Void>?

    init(
        http1: PublicRequestHandler, silenceLimit: TimeAmount = .seconds(30),
        makeHTTP2: @escaping (ChannelHandlerContext) -> [any ChannelHandler]
    ) {
        self.http1 = http1
        self.silenceLimit = silenceLimit
        self.makeHTTP2 = makeHTTP2
    }

    func handlerAdded(context: ChannelHandlerContext) {
        silence = context.eventLoop.assumeIsolated().scheduleTask(in: silenceLimit) {
            context.close(promise: nil)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        silence?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch machine.received(unwrapInboundIn(data)) {
        case .wait:
            return
        case .passOn(let bytes):
            context.fireChannelRead(wrapInboundOut(bytes))
        case .handOver(.http1, let held):
            hand(held, to: [http1], context: context)
        case .handOver(.http2, let held):
            hand(held, to: makeHTTP2(context), context: context)
        }
    }

    /// Installs the chosen handlers after this one, passes on what was held, and leaves.
    private func hand(_ held: ByteBuffer, to handlers: [any ChannelHandler], context: ChannelHandlerContext) {
        silence?.cancel()
        do {
            try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(held))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension PublicProtocolHandler: Sendable {}

/// Closes a public HTTP/2 connection on an error (nghttp2 has sent GOAWAY for a
/// protocol error already), saying why at debug level.
final class PublicHTTP2ErrorHandler: ChannelInboundHandler {
    typealias InboundIn = Never
    private let logger: Logger?

    init(logger: Logger?) {
        self.logger = logger
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger?.debug(
            "closing a public HTTP/2 connection after an error",
            metadata: ["client": "\(context.channel.remoteAddress?.ipAddress ?? "unknown")", "error": "\(error)"])
        context.close(promise: nil)
    }
}
