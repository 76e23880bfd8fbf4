import NIOCore
import Testing

@testable import PinholeCore

/// Expects `body` to throw an `HTTP1SyntaxError` whose description contains `complaint`.
func expectSyntaxError(
    containing complaint: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) {
    #expect(sourceLocation: sourceLocation) {
        try body()
    } throws: { error in
        (error as? HTTP1SyntaxError)?.description.contains(complaint) ?? false
    }
}

/// Feeds `text` to `read` in pieces of `readSize` bytes (all at once when nil), as a
/// connection would receive it; `read` consumes what it can of the input each time.
func feed(
    _ text: String, readSize: Int?, _ read: (inout ByteBuffer) throws(HTTP1SyntaxError) -> Void
) throws(HTTP1SyntaxError) {
    let bytes = Array(text.utf8)
    var input = ByteBuffer()
    var offset = 0
    while offset < bytes.count {
        let end = min(bytes.count, offset + (readSize ?? bytes.count))
        input.writeBytes(bytes[offset..<end])
        offset = end
        try read(&input)
    }
}
