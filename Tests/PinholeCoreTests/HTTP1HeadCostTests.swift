import NIOCore
import NIOHTTP1
import Testing

@testable import PinholeCore

/// A head costs work in proportion to its size, however its fields are arranged: the
/// `Connection` options it names are looked up, never searched for one by one.
@Suite("HTTP/1 heads: linear costs for Connection options and repeated fields")
struct HTTP1HeadCostTests {
    /// A head with `fields` fields `f0`…, and a Connection field naming `options`
    /// options `o0`…, of which the first `fields / 2` are also `f0`….
    private func head(start: String, fields: Int, options: Int) -> String {
        let named = (0..<fields / 2).map { "f\($0)" } + (0..<options).map { "o\($0)" }
        var text = start + "Connection: " + named.joined(separator: ",") + "\r\n"
        for index in 0..<fields { text += "F\(index): v\r\n" }
        return text + "\r\n"
    }

    @Test("the options Connection names are a set, looked up once per field")
    func optionsAreASet() {
        var hopByHop = HopByHopFields()
        _ = hopByHop.take(name: ArraySlice("Connection".utf8), value: ArraySlice("X-A, x-a ,X-B".utf8))
        let options: Set<String> = hopByHop.connectionOptions
        #expect(options == ["x-a", "x-b"])
        var fields = [("x-A", "1"), ("Keep", "2"), ("X-B", "3")]
        hopByHop.removeConnectionOptions(from: &fields)
        #expect(fields.map(\.0) == ["Keep"])
    }

    @Test("a request naming thousands of options beside thousands of fields keeps only the unnamed ones")
    func manyOptionsInARequest() throws {
        var input = ByteBuffer(
            string: head(start: "GET / HTTP/1.1\r\nHost: demo\r\n", fields: 2_000, options: 5_000))
        var parser = HTTP1RequestParser()
        guard case .head(let head) = try parser.next(from: &input) else {
            Issue.record("no head")
            return
        }
        #expect(head.headers.count == 1_000)
        #expect(head.headers.map(\.name).first == "F1000" && !head.headers.contains(name: "f0"))
    }

    @Test("a response naming thousands of options beside thousands of fields keeps only the unnamed ones")
    func manyOptionsInAResponse() throws {
        var input = ByteBuffer(
            string: head(start: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", fields: 2_000, options: 5_000))
        var parser = HTTP1ResponseParser()
        parser.expectResponse(bodyAllowed: true)
        guard case .head(let head, _) = try parser.next(from: &input) else {
            Issue.record("no head")
            return
        }
        #expect(head.headers.count == 1_001)  // with Content-Length
        #expect(!head.headers.contains(name: "f999") && head.headers.contains(name: "f1000"))
    }
}
