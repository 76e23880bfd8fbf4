import NIOHTTP1
import PinholeCore
import PinholeHTTP2
import Testing

@Suite("Proxy heads: hop-by-hop fields and forwarding headers")
struct ProxyHeadsTests {
    @Test("hop-by-hop fields go, with every option Connection names, whatever their case")
    func hopByHop() {
        let head = HTTPResponseHead(
            version: .http1_1, status: .ok,
            headers: [
                "Content-Type": "text/plain", "Connection": "Keep-Alive, X-Trace-Hop", "keep-alive": "timeout=5",
                "X-Trace-Hop": "1", "Transfer-Encoding": "chunked", "Upgrade": "h2c", "X-Kept": "yes",
            ])
        let response = ProxyResponseHead(http1: head)
        #expect(response.headers.map(\.name) == ["Content-Type", "X-Kept"])
        // Names keep their case here; HTTP2Headers lowercases them as they are sent.
        #expect(response.http2Headers == [(":status", "200"), ("Content-Type", "text/plain"), ("X-Kept", "yes")])
    }

    @Test("a request without hop-by-hop fields keeps all of them, plus X-Forwarded-*")
    func forwarded() throws {
        let head = HTTPRequestHead(
            version: .http1_1, method: .POST, uri: "/orders?id=7",
            headers: ["Host": "greeter.demo:3000", "X-Forwarded-For": "10.0.0.1", "Content-Length": "2"])
        let request = try ProxyRequestHead(publicRequest: head, clientAddress: "10.0.0.2")
        #expect(request.authority == "greeter.demo:3000" && request.path == "/orders?id=7" && request.mayHaveBody)
        #expect(request.headers.first(name: "x-forwarded-for") == "10.0.0.1, 10.0.0.2")
        #expect(request.headers.first(name: "x-forwarded-proto") == "http")
        #expect(request.headers.first(name: "x-forwarded-host") == "greeter.demo:3000")
        #expect(!request.headers.contains(name: "host"))
    }

    @Test("a request without Host is malformed")
    func missingHost() {
        #expect(throws: ExchangeError.self) {
            try ProxyRequestHead(
                publicRequest: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), clientAddress: nil)
        }
    }
}
