import Logging
import NIOCore
import NIOEmbedded
import PinholeHTTP2
import PinholeTLS
import PinholeTunnel
import Testing

@testable import PinholeAgent

/// The agent's side of the handshake in an EmbeddedChannel: the hello goes out once TLS
/// is up, and the relay's answer decides what the connection becomes.
@Suite("Agent handshake handler")
struct AgentHandshakeHandlerTests {
    let channel = EmbeddedChannel()
    let answered: EventLoopPromise<RelayAnswer.Tunnel>
    let hello = AgentHello(token: "a-token-long-enough", name: "dev", software: "test")

    init() throws {
        answered = channel.eventLoop.makePromise()
        let handler = AgentHandshakeHandler(hello: hello, answered: answered, logger: Logger(label: "test")) {
            context in
            HTTP2ConnectionHandler(role: .server, eventLoop: context.eventLoop)
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    }

    private func answerFrame(_ answer: RelayAnswer) throws -> ByteBuffer {
        try HandshakeFraming.encode(answer, allocator: channel.allocator)
    }

    @Test("the hello is sent once TLS completes, not before")
    func helloAfterTLS() throws {
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        channel.pipeline.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(negotiatedProtocol: "pinhole/1"))
        var sent = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(try HandshakeFraming.decode(AgentHello.self, from: &sent) == hello)
    }

    @Test("acceptance, split across reads: the promise succeeds, HTTP/2 takes over, trailing bytes reach it")
    func accepted() throws {
        var frame = try answerFrame(.accepted(.init(name: "dev", host: "203.0.113.7", port: 20000)))
        let first = frame.readSlice(length: 3)!
        try channel.writeInbound(first)
        channel.embeddedEventLoop.run()
        #expect(throws: Never.self) {
            _ = try channel.pipeline.syncOperations.handler(type: AgentHandshakeHandler.self)
        }
        // The rest of the answer, and the relay's first HTTP/2 bytes in the same read.
        frame.writeString("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        try channel.writeInbound(frame)
        let tunnel = try answered.futureResult.wait()
        #expect(tunnel.authority == "203.0.113.7:20000")
        #expect(throws: (any Error).self) {
            _ = try channel.pipeline.syncOperations.handler(type: AgentHandshakeHandler.self)
        }
        let http2 = try channel.pipeline.syncOperations.handler(type: HTTP2ConnectionHandler.self)
        #expect(http2.connection.activeStreamCount == 0)
        #expect(channel.isActive, "the preface was read as HTTP/2 and accepted")
    }

    @Test("a refusal fails the promise with its reason and words, and closes")
    func refused() throws {
        try channel.writeInbound(try answerFrame(.refused(.badToken, "the relay does not accept this token")))
        let error = #expect(throws: AgentError.self) { try answered.futureResult.wait() }
        guard case .refused(let reason, let message) = error else {
            Issue.record("expected a refusal, got \(String(describing: error))")
            return
        }
        #expect(reason == .badToken && message == "the relay does not accept this token")
        #expect(!channel.isActive)
    }

    @Test("the relay closing mid-handshake is a connection problem worth retrying")
    func closedDuringHandshake() throws {
        try channel.close().wait()
        #expect(throws: RelayTrouble.ClosedDuringHandshake.self) { try answered.futureResult.wait() }
    }

    @Test("bytes that are not an answer fail the handshake and close")
    func garbage() throws {
        var bytes = ByteBuffer()
        bytes.writeInteger(UInt32(1 << 30))
        try channel.writeInbound(bytes)
        #expect(throws: HandshakeFraming.Failure.self) { try answered.futureResult.wait() }
        #expect(!channel.isActive)
    }

    /// A connected channel's handler that leaves the pipeline before the relay answers
    /// (other than by `channelInactive`) must end the wait: a promise dropped unanswered
    /// crashed the debug test run.
    @Test("the handler leaving the pipeline before an answer ends the wait")
    func removedBeforeAnswer() throws {
        let handler = try channel.pipeline.syncOperations.handler(type: AgentHandshakeHandler.self)
        try channel.pipeline.syncOperations.removeHandler(handler).wait()
        #expect(throws: RelayTrouble.ClosedDuringHandshake.self) { try answered.futureResult.wait() }
        #expect(channel.isActive, "only the handler left; the channel is the caller's to close")
    }

    /// A connect to a name runs the channel initializer once per address tried, every
    /// attempt with a handler holding the one promise: an attempt that never connected
    /// must not answer for the one that wins.
    @Test("a connection attempt that never connected leaves the answer to the one that does")
    func notConnectedAttemptAnswersNothing() throws {
        let attempt = EmbeddedChannel()
        let shared = attempt.eventLoop.makePromise(of: RelayAnswer.Tunnel.self)
        var heard: Result<RelayAnswer.Tunnel, any Error>?
        shared.futureResult.whenComplete { heard = $0 }
        let handler = AgentHandshakeHandler(hello: hello, answered: shared, logger: Logger(label: "test")) {
            context in
            HTTP2ConnectionHandler(role: .server, eventLoop: context.eventLoop)
        }
        try attempt.pipeline.syncOperations.addHandler(handler)
        try attempt.pipeline.syncOperations.removeHandler(handler).wait()
        _ = try? attempt.finish()
        #expect(heard == nil, "the losing attempt answered: \(String(describing: heard))")
        shared.fail(RelayTrouble.ClosedDuringHandshake())  // the connect's own outcome, in the agent
    }
}
