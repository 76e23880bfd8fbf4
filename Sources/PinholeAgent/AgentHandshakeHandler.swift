import Logging
import NIOCore
import PinholeCore
import PinholeHTTP2
import PinholeTLS
import PinholeTunnel

/// The agent's side of the handshake: once TLS is up it sends its hello, reads the
/// relay's answer, and on acceptance becomes an HTTP/2 server whose streams are the
/// relay's public requests. Bytes that follow the answer in the same read belong to
/// HTTP/2 and are passed on.
final class AgentHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let hello: AgentHello
    private var phase: Phase
    private let makeHTTP2Handler: (ChannelHandlerContext) -> HTTP2ConnectionHandler
    private var buffer = ByteBuffer()
    private let logger: Logger

    init(
        hello: AgentHello, answered: EventLoopPromise<RelayAnswer.Tunnel>, logger: Logger,
        makeHTTP2Handler: @escaping (ChannelHandlerContext) -> HTTP2ConnectionHandler
    ) {
        self.logger = logger
        self.hello = hello
        self.phase = .notConnected(answered)
        self.makeHTTP2Handler = makeHTTP2Handler
    }

    /// Where the wait for the relay's answer stands. Every way out of `awaited` gives the
    /// answer (or the reason there is none) exactly once, or the agent waits forever.
    private enum Phase {
        /// Not connected yet. A connect to a name tries each address on a channel of its
        /// own, each with this handler and the one promise: an attempt that loses goes
        /// without a word, and the connect's own outcome speaks if none wins.
        case notConnected(EventLoopPromise<RelayAnswer.Tunnel>)
        /// This connection is the one: the relay's answer is awaited on it.
        case awaited(EventLoopPromise<RelayAnswer.Tunnel>)
        case given
    }

    func channelActive(context: ChannelHandlerContext) {
        if case .notConnected(let answered) = phase { phase = .awaited(answered) }
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .pinnedCertificateExpired(let notAfter) = event as? TLSEvent {
            // A warning, though a library logs at info or below: the user must hear it,
            // and the agent's command shows warnings only. The pin still decides.
            logger.warning(
                """
                the relay's pinned certificate expired \(UntrustedText.escaped(notAfter)); the pin is still \
                trusted, but renew the certificate (and the pin) on the relay
                """)
        }
        if case .handshakeCompleted = event as? TLSEvent {
            do {
                let frame = try HandshakeFraming.encode(hello, allocator: context.channel.allocator)
                context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
            } catch {
                fail(error, context: context)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard case .awaited = phase else {
            context.fireChannelRead(data)
            return
        }
        buffer.writeBuffer(&bytes)
        let answer: RelayAnswer
        do {
            guard let decoded = try HandshakeFraming.decode(RelayAnswer.self, from: &buffer) else { return }
            answer = decoded
        } catch {
            fail(error, context: context)
            return
        }
        guard let tunnel = answer.tunnel else {
            let refusal =
                answer.refusal ?? .init(reason: .invalidRequest, message: "the relay answered without a tunnel")
            // The relay's words, escaped: they are printed. Throttled or full is not
            // refused: waiting is the answer (the agent retries with backoff).
            let message = UntrustedText.escaped(refusal.message)
            switch refusal.reason {
            case .slowDown: complete(.failure(ConnectionLost(reason: "the relay says: \(message)")))
            case .tooManyTunnels: complete(.failure(RelayFull(message: message)))
            default: complete(.failure(AgentError.refused(refusal.reason, message)))
            }
            context.close(promise: nil)
            return
        }
        do {
            try context.pipeline.syncOperations.addHandler(makeHTTP2Handler(context), position: .after(self))
        } catch {
            fail(error, context: context)
            return
        }
        complete(.success(tunnel))
        if buffer.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(buffer)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        complete(.failure(RelayTrouble.ClosedDuringHandshake()))
        context.fireChannelInactive()
    }

    /// The handler leaving a connected channel any other way ends the wait too.
    func handlerRemoved(context: ChannelHandlerContext) {
        complete(.failure(RelayTrouble.ClosedDuringHandshake()))
    }

    private func fail(_ error: any Error, context: ChannelHandlerContext) {
        complete(.failure(error))
        context.close(promise: nil)
    }

    private func complete(_ result: Result<RelayAnswer.Tunnel, any Error>) {
        guard case .awaited(let answered) = phase else { return }
        phase = .given
        answered.completeWith(result)
    }
}

/// The relay has no room for the tunnel now (its own limit, or the token's): the agent
/// waits and tries again, and says so once.
struct RelayFull: Error, CustomStringConvertible {
    let message: String
    var description: String {
        "the relay has no room for this tunnel now: \(message); waiting for room, and trying again quietly"
    }
}

/// A connection problem worth retrying.
struct ConnectionLost: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}

@available(*, unavailable)
extension AgentHandshakeHandler: Sendable {}
