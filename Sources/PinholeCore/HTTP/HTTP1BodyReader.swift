import NIOCore
import NIOHTTP1

/// Reads one HTTP/1.1 message body, framed one of the ways RFC 9112 §6 allows, and
/// then its end. Body pieces are slices of the bytes read, never copies.
struct HTTP1BodyReader {
    enum Framing: Equatable {
        /// No body: the end comes at once.
        case none
        case length(Int)
        case chunked
        /// The body runs until the connection closes (responses only).
        case untilClose
    }

    enum Step: Equatable {
        case body(ByteBuffer)
        case end(trailers: HTTPHeaders?)
    }

    private enum State {
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// The body is over: `.end` is the next step.
        case complete
        /// `.end` was returned.
        case done
    }

    private var state: State
    private var trailerScanner = HTTP1SectionScanner()

    init(_ framing: Framing) {
        switch framing {
        case .none, .length(0): state = .complete
        case .length(let length): state = .fixed(remaining: length)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    /// True once the end has been returned.
    var isDone: Bool {
        if case .done = state { return true }
        return false
    }

    /// The next piece or the end, consuming bytes of `input`; nil when more bytes are
    /// needed (or after the end).
    mutating func next(from input: inout ByteBuffer) throws(HTTP1SyntaxError) -> Step? {
        while true {
            switch state {
            case .fixed(let remaining):
                guard let (piece, left) = Self.take(upTo: remaining, from: &input) else { return nil }
                state = left == 0 ? .complete : .fixed(remaining: left)
                return .body(piece)
            case .chunkSize:
                guard let line = try HTTP1Syntax.takeChunkLine(from: &input, limit: 4096) else { return nil }
                let size = try HTTP1Syntax.chunkSize(line)
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard let (piece, left) = Self.take(upTo: remaining, from: &input) else { return nil }
                state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                return .body(piece)
            case .chunkDataEnd:
                // Exactly CRLF after a chunk's data.
                let view = input.readableBytesView
                guard view.first.map({ $0 == UInt8(ascii: "\r") }) ?? true,
                    view.count < 2 || view[view.startIndex + 1] == UInt8(ascii: "\n")
                else {
                    throw HTTP1SyntaxError(description: "a chunk longer than its size")
                }
                guard view.count >= 2 else { return nil }
                input.moveReaderIndex(forwardBy: 2)
                state = .chunkSize
            case .trailers:
                guard let section = try trailerScanner.take(from: &input) else { return nil }
                state = .done
                let trailers = try HTTP1Syntax.trailerFields(section)
                return .end(trailers: trailers.isEmpty ? nil : trailers)
            case .untilClose:
                guard input.readableBytes > 0 else { return nil }
                return .body(input.readSlice(length: input.readableBytes)!)
            case .complete:
                state = .done
                return .end(trailers: nil)
            case .done:
                return nil
            }
        }
    }

    /// A slice of up to `remaining` bytes of `input`, and how many remain after it;
    /// nil when `input` is empty.
    private static func take(upTo remaining: Int, from input: inout ByteBuffer) -> (ByteBuffer, Int)? {
        guard input.readableBytes > 0 else { return nil }
        let piece = input.readSlice(length: min(remaining, input.readableBytes))!
        return (piece, remaining - piece.readableBytes)
    }

    /// The connection closed: the end of a body that ran to the close, if this is one.
    mutating func endOfInput() -> Step? {
        guard case .untilClose = state else { return nil }
        state = .done
        return .end(trailers: nil)
    }
}
