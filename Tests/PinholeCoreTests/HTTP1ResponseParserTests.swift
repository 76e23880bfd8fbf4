import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

@Suite("HTTP/1 response parser: framing, reuse and refusals")
struct HTTP1ResponseParserTests {
    /// What a response parsed into, with body pieces joined.
    struct Parsed: Equatable {
        var status = 0
        var headers: [String] = []
        var reusable = false
        var body = ""
        var trailers: [String]?
        var ended = false
    }

    /// Feeds `text` in reads of `readSize` bytes (all at once when nil), then the close
    /// when `close` is set.
    private func parse(
        _ text: String, bodyAllowed: Bool = true, mayUpgrade: Bool = false, readSize: Int? = nil,
        close: Bool = false
    ) throws(HTTP1SyntaxError) -> Parsed {
        var parser = HTTP1ResponseParser()
        parser.expectResponse(bodyAllowed: bodyAllowed, mayUpgrade: mayUpgrade)
        var parsed = Parsed()
        func take(_ event: HTTP1ResponseParser.Event) {
            switch event {
            case .head(let head, let reusable):
                parsed.status = Int(head.status.code)
                parsed.headers = head.headers.map { "\($0.name): \($0.value)" }
                parsed.reusable = reusable
            case .body(let piece):
                parsed.body += String(buffer: piece)
            case .end(let trailers):
                parsed.trailers = trailers.map { $0.map { "\($0.name): \($0.value)" } }
                parsed.ended = true
            }
        }
        try feed(text, readSize: readSize) { (input: inout ByteBuffer) throws(HTTP1SyntaxError) in
            while let event = try parser.next(from: &input) { take(event) }
        }
        if close, let event = parser.endOfInput() { take(event) }
        return parsed
    }

    @Test("Content-Length framing, whatever the read sizes", arguments: [nil, 1, 2, 7])
    func contentLength(readSize: Int?) throws {
        let parsed = try parse(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!",
            readSize: readSize)
        #expect(
            parsed
                == Parsed(
                    status: 200, headers: ["Content-Type: text/plain", "Content-Length: 13"], reusable: true,
                    body: "Hello, world!", ended: true))
    }

    @Test("chunked framing with extensions and trailers; bare LF ends head lines", arguments: [nil, 1, 3])
    func chunked(readSize: Int?) throws {
        let parsed = try parse(
            "\r\nHTTP/1.1 200 OK\nTransfer-Encoding: Chunked\n\n5;ext=1\r\nHello\r\n8 ; a=\"b\"\r\n, world!\r\n"
                + "0\r\nX-Checksum:  abc \r\n\r\n",
            readSize: readSize)
        #expect(parsed.body == "Hello, world!" && parsed.ended && parsed.reusable)
        #expect(parsed.trailers == ["X-Checksum: abc"])
        // Transfer-Encoding is hop-by-hop: it does not travel on.
        #expect(parsed.headers.isEmpty)
    }

    @Test("the same Content-Length twice is passed on once")
    func repeatedLength() throws {
        let parsed = try parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok")
        #expect(parsed.headers == ["Content-Length: 2"] && parsed.body == "ok")
    }

    @Test("with both, Transfer-Encoding frames the body and Content-Length is not passed on")
    func lengthAndChunked() throws {
        let parsed = try parse(
            "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nX-Kept: 1\r\n\r\n"
                + "3\r\nabc\r\n0\r\n\r\n")
        #expect(parsed.body == "abc" && parsed.ended && parsed.headers == ["X-Kept: 1"])
    }

    @Test("no body after HEAD, 204 and 304, whatever the headers say")
    func noBody() throws {
        let head = try parse("HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", bodyAllowed: false)
        #expect(head.ended && head.body.isEmpty && head.headers == ["Content-Length: 42"])
        let noContent = try parse("HTTP/1.1 204 No Content\r\nContent-Length: 42\r\n\r\n")
        #expect(noContent.ended && noContent.status == 204)
        let notModified = try parse("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(notModified.ended && notModified.status == 304)
    }

    @Test("interim 1xx heads are skipped")
    func interim() throws {
        let parsed = try parse(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
                + "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        #expect(parsed.status == 201 && parsed.body == "ok" && parsed.ended)
    }

    @Test("a 101 is final only for a request that asked to switch; then all bytes are body, to the close")
    func switchingProtocols() throws {
        let text =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: abc\r\n\r\n\u{1}\u{2}hiHTTP/1.1 200 OK\r\n"
        #expect(throws: HTTP1SyntaxError.self) { try parse(text) }
        let switched = try parse(text, mayUpgrade: true, readSize: 5, close: true)
        #expect(switched.status == 101 && switched.headers == ["Sec-WebSocket-Accept: abc"] && !switched.reusable)
        #expect(switched.body == "\u{1}\u{2}hiHTTP/1.1 200 OK\r\n" && switched.ended)
        let declined = try parse("HTTP/1.1 426 Upgrade Required\r\nContent-Length: 0\r\n\r\n", mayUpgrade: true)
        #expect(declined.status == 426 && declined.ended)
    }

    @Test("an app cannot claim a switch of protocols with the tunnel's own field")
    func tunnelFieldDropped() throws {
        let parsed = try parse("HTTP/1.1 200 OK\r\nPinhole-Upgraded: websocket\r\nContent-Length: 0\r\n\r\n")
        #expect(parsed.headers == ["Content-Length: 0"])
    }

    @Test("without a length the body runs to the close, and the connection is not reused")
    func untilClose() throws {
        let open = try parse("HTTP/1.0 200 OK\r\n\r\nsome bytes")
        #expect(open.body == "some bytes" && !open.ended && !open.reusable)
        let closed = try parse("HTTP/1.0 200 OK\r\n\r\nsome bytes", readSize: 4, close: true)
        #expect(closed.body == "some bytes" && closed.ended)
    }

    @Test("hop-by-hop fields stay behind, with the fields Connection names")
    func hopByHop() throws {
        let parsed = try parse(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\n"
                + "X-Kept: yes\r\nContent-Length: 0\r\n\r\n")
        #expect(parsed.headers == ["X-Kept: yes", "Content-Length: 0"] && parsed.reusable && parsed.ended)
    }

    @Test("reuse follows the version and Connection")
    func reuse() throws {
        #expect(try !parse("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n").reusable)
        #expect(try !parse("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable)
        #expect(try parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n").reusable)
    }

    @Test(
        "malformed responses are refused with what is wrong",
        arguments: [
            ("SSH-2.0-OpenSSH_9.2\r\n\r\n", "status line"),
            ("HTTP/2 200\r\n\r\n", "status line"),
            ("HTTP/1.1 20 OK\r\n\r\n", "status line"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length"),
            ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
            ("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n", "folded"),
            ("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "without a valid name"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", "longer than its size"),
            ("HTTP/1.1 101 Switching Protocols\r\n\r\n", "switched protocols"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n", "not ended by CRLF"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5 junk\r\nhello\r\n", "chunk size"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\u{01}\r\nhello\r\n", "chunk size"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n", "longer than its size"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "cannot carry ('gzip')"),
            ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "cannot carry"),
            ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n\r\nbody", "answer no request"),
            ("\u{16}\u{03}\u{01}", "status line"),
        ])
    func malformed(text: String, complaint: String) {
        expectSyntaxError(containing: complaint) { _ = try parse(text) }
    }

    @Test("a head that never ends is refused past its limit, bytes nobody asked for too")
    func limits() throws {
        let endless = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Filler: 0123456789abcdef\r\n", count: 4000)
        #expect(throws: HTTP1SyntaxError.self) { _ = try parse(endless) }
        var parser = HTTP1ResponseParser()
        var stray = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")
        #expect(throws: HTTP1SyntaxError.self) { _ = try parser.next(from: &stray) }
        var empty = ByteBuffer()
        #expect(try parser.next(from: &empty) == nil)
    }
}
