import NIOCore
import NIOHTTP1
import PinholeHTTP2
import PinholeTunnel
import Testing

@testable import PinholeCore

@Suite("Head limits agree from the public port to the agent")
struct HeadLimitsTests {
    @Test("the tunnel carries every head the public side accepts")
    func tunnelCarriesTheLimit() {
        #expect(HTTP2Configuration().maxHeaderListSize >= HeadLimits.maximumHeaderListSize)
        #expect(HTTP1Syntax.maximumHeadSize <= HeadLimits.maximumHeaderListSize)
    }

    @Test("a request's size is its HTTP/2 header list: every field, pseudo-headers too, plus 32 each")
    func countedAsHTTP2Counts() throws {
        let request = ProxyRequestHead(
            method: .GET, path: "/a", authority: "demo", scheme: "http", headers: ["X-One": "1", "x-two": "22"])
        let expected = request.http2Headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }
        #expect(request.headerListSize == expected)
    }

    @Test("a head over the limit once the relay's X-Forwarded-* fields are added is refused with 431")
    func forwardedFieldsCount() throws {
        // Under the limit as sent; over it with the three fields the relay appends.
        let padding = HeadLimits.maximumHeaderListSize - 4 * 32 - 60 - 32 - 6
        var input = ByteBuffer(
            string: "GET / HTTP/1.1\r\nHost: demo\r\nX-Pad: \(String(repeating: "p", count: padding))\r\n\r\n")
        var parser = HTTP1RequestParser()
        guard case .head(let head) = try parser.next(from: &input) else {
            Issue.record("no head")
            return
        }
        #expect(throws: ExchangeError.headTooLarge(limit: HeadLimits.maximumHeaderListSize)) {
            try ProxyRequestHead(publicRequest: head, clientAddress: "127.0.0.1")
        }
        #expect(ExchangeError.headTooLarge(limit: 65536).status == .requestHeaderFieldsTooLarge)
        #expect(ExchangeError.headTooLarge(limit: 65536).message.contains("larger than 64 KiB"))
    }
}
