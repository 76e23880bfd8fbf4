import NIOCore
import PinholeHTTP2

/// Answers every HTTP/2 request with 200 and a fixed body (a stand-in for a tiny
/// web server in interop tests and the h2load benchmark).
final class StaticResponder: HTTP2StreamDelegate {
    private let body: ByteBuffer

    init(body: ByteBuffer) {
        self.body = body
    }

    func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
        switch part {
        case .data(let data):
            stream.consumed(data.readableBytes)
        case .end:
            stream.sendHeaders([
                (":status", "200"), ("content-type", "text/plain"), ("content-length", "\(body.readableBytes)"),
            ])
            stream.sendData(body, endStream: true)
        case .headers, .trailers:
            break
        }
    }

    func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {}
    func streamWritabilityChanged(_ stream: HTTP2Stream) {}
}
