import NIOCore
import NIOEmbedded
import Testing

@testable import PinholeHTTP2

@Suite("HTTP/2 writes: what one event-loop tick produces leaves in one flush")
struct HTTP2WriteCoalescingTests {
    @Test("a response with trailers (a gRPC answer) goes out in one flush, trailers included")
    func trailersShareTheFlush() throws {
        /// Answers a request at its end with a head, a body and trailers, at once.
        final class Answer: HTTP2StreamDelegate {
            func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
                guard case .end = part else { return }
                stream.sendHeaders([(":status", "200"), ("content-type", "application/grpc")])
                stream.sendData(ByteBuffer(bytes: [0, 0, 0, 0, 2, 8, 1]))
                stream.sendTrailers([("grpc-status", "0")])
            }
            func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {}
            func streamWritabilityChanged(_ stream: HTTP2Stream) {}
        }
        let answer = Answer()
        let pair = try InMemoryHTTP2Pair { _ in answer }
        let flushes = FlushCounter()
        try pair.server.pipeline.syncOperations.addHandler(flushes, position: .first)

        let client = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(path: "/pkg.Service/Method"), endStream: true, delegate: client)
        try pair.interact()

        #expect(client.headers?[":status"] == "200")
        #expect(client.body.readableBytes == 7)
        #expect(client.trailers?["grpc-status"] == "0")
        // The trailers are submitted after the pass that sends the last DATA returns, so
        // they take a second pass; flushed per pass, they left in a write of their own.
        #expect(flushes.count == 1)
    }
}

/// Counts the flushes that pass it on their way to the channel.
private final class FlushCounter: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private(set) var count = 0

    func flush(context: ChannelHandlerContext) {
        count += 1
        context.flush()
    }
}
