import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

@Suite("HTTP/1 request parser: framing, pipelining and what smuggling needs refused")
struct HTTP1RequestParserTests {
    /// A request as read, body pieces joined.
    struct Read: Equatable {
        var head: PublicRequestHead
        var body = ""
        var trailers: [String]?
    }

    /// Reads every request in `text`, fed in reads of `readSize` bytes.
    private func parse(_ text: String, readSize: Int? = nil) throws(HTTP1SyntaxError) -> [Read] {
        var parser = HTTP1RequestParser()
        var requests: [Read] = []
        try feed(text, readSize: readSize) { (input: inout ByteBuffer) throws(HTTP1SyntaxError) in
            while let event = try parser.next(from: &input) {
                switch event {
                case .head(let head): requests.append(Read(head: head))
                case .body(let piece): requests[requests.count - 1].body += String(buffer: piece)
                case .end(let trailers):
                    requests[requests.count - 1].trailers = trailers.map { $0.map { "\($0.name): \($0.value)" } }
                }
            }
        }
        #expect(parser.isBetweenRequests, "a request was left unfinished")
        return requests
    }

    @Test("pipelined requests with and without bodies, whatever the read sizes", arguments: [nil, 1, 5])
    func pipelined(readSize: Int?) throws {
        let requests = try parse(
            "\r\nGET /a HTTP/1.1\r\nHost: demo\r\n\r\n"
                + "POST /b HTTP/1.1\r\nHost: demo\r\nContent-Length: 5\r\n\r\nhello"
                + "PUT /c HTTP/1.1\r\nhost: demo\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n"
                + "0\r\nX-Sum: 5\r\n\r\n",
            readSize: readSize)
        #expect(requests.map(\.head.target) == ["/a", "/b", "/c"])
        #expect(requests.map(\.head.method) == [.GET, .POST, .PUT])
        #expect(requests.map(\.head.hasBody) == [false, true, true])
        #expect(requests.map(\.body) == ["", "hello", "abcde"])
        #expect(requests[2].trailers == ["X-Sum: 5"])
        #expect(requests.allSatisfy { $0.head.host == "demo" && $0.head.keepAlive })
        #expect(requests[1].head.headers.map(\.name) == ["Content-Length"])
    }

    @Test("keep-alive follows the version and Connection; Expect is answered, not forwarded")
    func connectionAndExpect() throws {
        let old = try parse("GET / HTTP/1.0\r\nHost: a\r\n\r\n")[0].head
        #expect(!old.keepAlive && old.version == .http1_0)
        let oldKept = try parse("GET / HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")[0].head
        #expect(oldKept.keepAlive && oldKept.headers.isEmpty)
        let closing = try parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")[0].head
        #expect(!closing.keepAlive)
        let upload = try parse("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx")[0]
        #expect(upload.head.expectsContinue && !upload.head.headers.contains(name: "expect") && upload.body == "x")
    }

    @Test(
        "ambiguous or malformed requests are refused with what is wrong",
        arguments: [
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", "ambiguous"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", "Content-Length"),
            ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\n", "Content-Length"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", "chunked"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "cannot carry ('gzip')"),
            ("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.0"),
            ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n", "CRLF"),
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "two Host"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n", "folded"),
            ("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r2\r\n\r\n", "control character"),
            ("GET / HTTP/1.1\r\nHost: a\r\nBad Name: 1\r\n\r\n", "valid name"),
            ("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n", "request line"),
            ("GET /caf\u{E9} HTTP/1.1\r\nHost: a\r\n\r\n", "percent-encode"),
            ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "not HTTP/1.x"),
            ("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "chunk size"),
        ])
    func refused(text: String, complaint: String) {
        expectSyntaxError(containing: complaint) { _ = try parse(text) }
    }

    @Test(
        "a head past 64 KiB (the tunnel's limit) is refused, whether or not its end has arrived",
        arguments: [false, true])
    func headLimit(complete: Bool) {
        var parser = HTTP1RequestParser()
        var input = ByteBuffer(string: "GET / HTTP/1.1\r\n")
        input.writeString(String(repeating: "X-Filler: 0123456789abcdef\r\n", count: 3000))
        if complete { input.writeString("\r\n") }
        expectSyntaxError(containing: "larger than 64 KiB") { _ = try parser.next(from: &input) }
    }

    @Test("the same Content-Length twice is passed on once")
    func repeatedLength() throws {
        let read = try parse("PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\nabc")
        #expect(read.map(\.head.headers.count) == [1] && read.map(\.body) == ["abc"])
    }
}
