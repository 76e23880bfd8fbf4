import NIOCore
import NIOEmbedded
import PinholeTestSupport

@testable import PinholeHTTP2

/// An HTTP/2 client and server, each in an EmbeddedChannel, passing bytes in memory.
final class InMemoryHTTP2Pair {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let clientHandler: HTTP2ConnectionHandler
    let serverHandler: HTTP2ConnectionHandler
    let clientEvents = EventRecorder()
    let serverEvents = EventRecorder()

    init(
        clientConfiguration: HTTP2Configuration = HTTP2Configuration(),
        serverConfiguration: HTTP2Configuration = HTTP2Configuration(),
        acceptor: @escaping (HTTP2Stream) -> any HTTP2StreamDelegate
    ) throws {
        clientHandler = HTTP2ConnectionHandler(
            role: .client, eventLoop: client.eventLoop, configuration: clientConfiguration)
        serverHandler = HTTP2ConnectionHandler(
            role: .server, eventLoop: server.eventLoop, configuration: serverConfiguration, streamAcceptor: acceptor)
        try client.pipeline.syncOperations.addHandlers([clientHandler, clientEvents])
        try server.pipeline.syncOperations.addHandlers([serverHandler, serverEvents])
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        try interact()
    }

    var clientConnection: HTTP2Connection { clientHandler.connection }
    var serverConnection: HTTP2Connection { serverHandler.connection }

    /// Runs both event loops and moves bytes until nothing moves.
    func interact() throws {
        try EmbeddedWire.interact(client, server)
    }
}

/// Records errors and connection events that reach the top of a pipeline.
final class EventRecorder: ChannelInboundHandler {
    typealias InboundIn = Never
    var errors: [any Error] = []
    var events: [HTTP2ConnectionEvent] = []

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        errors.append(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? HTTP2ConnectionEvent { events.append(event) }
    }
}

/// The server side's streams: each is recorded by `delegate`, and `last` is the newest.
final class ServerStreams {
    let delegate = RecordingDelegate()
    private(set) var last: HTTP2Stream?

    func accept(_ stream: HTTP2Stream) -> any HTTP2StreamDelegate {
        last = stream
        return delegate
    }
}

/// A stream delegate that records everything and can consume data (or not).
final class RecordingDelegate: HTTP2StreamDelegate {
    var headers: HTTP2Headers?
    var trailers: HTTP2Headers?
    var body = ByteBuffer()
    var ended = false
    var closed = false
    var error: HTTP2Error?
    var consumes = true
    /// The largest `.data` part: one DATA frame at most, so it shows the frame size used.
    var largestDataPart = 0
    /// Set to assert that nghttp2 never calls us from inside itself.
    var sawReentrantCall = false

    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        if stream.connection.inSession { sawReentrantCall = true }
        switch part {
        case .headers(let fields): headers = fields
        case .data(var data):
            let count = data.readableBytes
            largestDataPart = max(largestDataPart, count)
            body.writeBuffer(&data)
            if consumes { stream.consumed(count) }
        case .trailers(let fields): trailers = fields
        case .end: ended = true
        }
    }

    func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
        if stream.connection.inSession { sawReentrantCall = true }
        closed = true
        self.error = error
    }

    func streamWritabilityChanged(_ stream: HTTP2Stream) {}
}

/// A server delegate that answers 200 and echoes the request body back, streaming.
final class EchoResponder: HTTP2StreamDelegate {
    var sawReentrantCall = false

    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        if stream.connection.inSession { sawReentrantCall = true }
        switch part {
        case .headers:
            stream.sendHeaders([(":status", "200"), ("content-type", "application/octet-stream")])
        case .data(let data):
            stream.sendData(data)
            stream.consumed(data.readableBytes)
        case .trailers, .end:
            stream.finish()
        }
    }

    func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {}
    func streamWritabilityChanged(_ stream: HTTP2Stream) {}
}

func requestHeaders(path: String = "/", method: String = "POST") -> HTTP2Headers {
    [(":method", method), (":scheme", "https"), (":authority", "pinhole.test"), (":path", path)]
}
