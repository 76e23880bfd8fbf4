import NIOCore
import NIOEmbedded
import PinholeTLS
import PinholeTestSupport

/// Records what reaches the top of a TLS pipeline.
final class TLSRecorder: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    var received = ""
    var events: [TLSEvent] = []
    var errors: [any Error] = []
    var inputClosed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += String(buffer: unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSEvent { events.append(event) }
        if let event = event as? ChannelEvent, event == .inputClosed { inputClosed = true }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    var tlsErrors: [TLSError] { errors.compactMap { $0 as? TLSError } }

    var handshakeCompleted: Bool {
        events.contains { if case .handshakeCompleted = $0 { true } else { false } }
    }

    var negotiatedProtocol: String? {
        for case .handshakeCompleted(let negotiated) in events { return negotiated }
        return nil
    }
}

/// A client and a server `TLSHandler`, each in an `EmbeddedChannel`, passing bytes
/// to each other in memory: the whole TLS conversation without a socket.
struct InMemoryTLSPair {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let clientRecorder = TLSRecorder()
    let serverRecorder = TLSRecorder()

    init(client clientContext: TLSContext, server serverContext: TLSContext, serverName: String) throws {
        try client.pipeline.syncOperations.addHandlers([
            TLSHandler(context: clientContext, serverName: serverName), clientRecorder,
        ])
        try server.pipeline.syncOperations.addHandlers([TLSHandler(context: serverContext), serverRecorder])
    }

    /// Connects both channels and runs the handshake to its end.
    func connect() throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 4443)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        try interact()
    }

    /// Moves bytes both ways until neither side has anything left to say.
    func interact() throws {
        try EmbeddedWire.interact(client, server)
    }

    func send(_ text: String, from channel: EmbeddedChannel) throws {
        channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
        try interact()
    }
}
