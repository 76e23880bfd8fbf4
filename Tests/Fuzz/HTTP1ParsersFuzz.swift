import Foundation  // ProxyHeads uses String.range(of:), which the package gets from its other files
import NIOCore

/// libFuzzer's entry: the input is fed to the request parser and, as a response to a
/// GET (and to a HEAD, whose framing differs), to the response parser, split in two at
/// a point the first byte picks, as a connection would receive it. Any crash, hang or
/// memory error is a finding; errors thrown for bad input are the expected outcome.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1Parsers(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let split = size > 0 ? Int(bytes[0]) % (size + 1) : 0
    var request = HTTP1RequestParser()
    feed(bytes, split: split) { input throws(HTTP1SyntaxError) in
        while let event = try request.next(from: &input) {
            if case .head(let head) = event {
                _ = try? ProxyRequestHead(publicRequest: head, clientAddress: "127.0.0.1")
            }
        }
    }
    for bodyAllowed in [true, false] {
        var response = HTTP1ResponseParser()
        response.expectResponse(bodyAllowed: bodyAllowed, mayUpgrade: !bodyAllowed)
        feed(bytes, split: split) { input throws(HTTP1SyntaxError) in
            while try response.next(from: &input) != nil {}
        }
        _ = response.endOfInput()
    }
    return 0
}

/// Feeds `bytes` in two reads, stopping at the first syntax error.
private func feed(
    _ bytes: UnsafeBufferPointer<UInt8>, split: Int, _ read: (inout ByteBuffer) throws(HTTP1SyntaxError) -> Void
) {
    var input = ByteBuffer()
    do {
        for part in [bytes[..<split], bytes[split...]] {
            input.writeBytes(UnsafeBufferPointer(rebasing: part))
            try read(&input)
        }
    } catch {
        return
    }
}
