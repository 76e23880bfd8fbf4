import NIOCore
import NIOHTTP1
import PinholeHTTP2
import PinholeTunnel
import Testing

@testable import PinholeCore

@Suite("Proxy heads: hop-by-hop fields and forwarding headers")
struct ProxyHeadsTests {
    /// The head of the request `text`, as the public side reads it.
    private func publicHead(_ text: String) throws -> PublicRequestHead {
        var parser = HTTP1RequestParser()
        var input = ByteBuffer(string: text)
        guard case .head(let head) = try parser.next(from: &input) else {
            throw HTTP1SyntaxError(description: "no head in \(text)")
        }
        return head
    }

    @Test("hop-by-hop fields go, with every option Connection names, whatever their case")
    func hopByHop() throws {
        let head = try publicHead(
            "GET / HTTP/1.1\r\nHost: demo\r\nContent-Type: text/plain\r\nConnection: Keep-Alive, X-Trace-Hop\r\n"
                + "keep-alive: timeout=5\r\nX-Trace-Hop: 1\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Kept: yes\r\n\r\n")
        let request = try ProxyRequestHead(publicRequest: head, clientAddress: nil)
        #expect(
            request.headers.map(\.name) == ["Content-Type", "X-Kept", "x-forwarded-proto", "x-forwarded-host"])
        // Names keep their case here; HTTP2Headers lowercases them as they are sent.
        let response = ProxyResponseHead(status: .ok, headers: ["Content-Type": "text/plain"])
        #expect(response.http2Headers == [(":status", "200"), ("Content-Type", "text/plain")])
    }

    @Test("a request without hop-by-hop fields keeps all of them, plus X-Forwarded-*")
    func forwarded() throws {
        let head = try publicHead(
            "POST /orders?id=7 HTTP/1.1\r\nHost: greeter.demo:3000\r\nX-Forwarded-For: 10.0.0.1\r\n"
                + "Content-Length: 2\r\n\r\n")
        let request = try ProxyRequestHead(publicRequest: head, clientAddress: "10.0.0.2")
        #expect(request.authority == "greeter.demo:3000" && request.path == "/orders?id=7" && request.mayHaveBody)
        #expect(request.headers.first(name: "x-forwarded-for") == "10.0.0.1, 10.0.0.2")
        #expect(request.headers.first(name: "x-forwarded-proto") == "http")
        #expect(request.headers.first(name: "x-forwarded-host") == "greeter.demo:3000")
        #expect(!request.headers.contains(name: "host"))
    }

    @Test("X-Forwarded-Proto and -Host are the relay's own; X-Forwarded-For keeps the client's list and grows")
    func forwardedSetByTheRelay() throws {
        let head = try publicHead(
            "GET / HTTP/1.1\r\nHost: demo\r\nX-Forwarded-Proto: https\r\nx-forwarded-host: bank.example\r\n"
                + "X-Forwarded-For: 203.0.113.9\r\n\r\n")
        let request = try ProxyRequestHead(publicRequest: head, clientAddress: "10.0.0.2")
        #expect(request.headers["x-forwarded-proto"] == ["http"])
        #expect(request.headers["x-forwarded-host"] == ["demo"])
        #expect(request.headers["x-forwarded-for"] == ["203.0.113.9, 10.0.0.2"])
    }

    @Test(
        "an HTTP/2 public request gets the X-Forwarded-* fields in the reading pass, as appending them after would",
        arguments: [
            [("x-forwarded-for", "203.0.113.9"), ("accept", "*/*"), ("x-forwarded-for", "198.51.100.7")],
            [("x-forwarded-proto", "https"), ("x-forwarded-host", "bank.example"), ("x-forwarded-proto", "ftp")],
            [("accept", "*/*"), ("user-agent", "grpc-python/1.76")],
            [],
        ])
    func forwardingWhileReading(clientFields: [(String, String)]) throws {
        var fields = HTTP2Headers()
        for (name, value) in [(":method", "GET"), (":scheme", "http"), (":authority", "demo"), (":path", "/")]
            + clientFields
        {
            fields.add(name: name, value: value)
        }
        for clientAddress in ["10.0.0.2", nil] {
            let forwarding = ForwardingFields(clientAddress: clientAddress, scheme: "https")
            var appended = try ProxyRequestHead(http2: fields)
            appended.appendForwardingFields(clientAddress: clientAddress, scheme: "https")
            let read = try ProxyRequestHead(http2: fields, forwarding: forwarding)
            #expect(read.headers.map { [$0.name, $0.value] } == appended.headers.map { [$0.name, $0.value] })
            #expect(read.headers["x-forwarded-proto"] == ["https"] && read.headers["x-forwarded-host"] == ["demo"])
        }
        // Through the tunnel (no forwarding), a client's fields stay as they came.
        let atAgent = try ProxyRequestHead(http2: fields)
        #expect(atAgent.headers.map { [$0.name, $0.value] } == clientFields.map { [$0.0, $0.1] })
    }

    @Test("an absolute-form target gives the path, and the authority when Host is missing")
    func absoluteForm() throws {
        let head = try publicHead("GET http://greeter.demo:3000?q=1 HTTP/1.1\r\n\r\n")
        let request = try ProxyRequestHead(publicRequest: head, clientAddress: nil)
        #expect(request.authority == "greeter.demo:3000" && request.path == "/?q=1" && !request.mayHaveBody)
    }

    @Test("a WebSocket handshake crosses the tunnel as pinhole-upgrade; h2c and HTTP/1.0 upgrades are ignored")
    func upgrades() throws {
        let webSocket = try publicHead(
            "GET /chat HTTP/1.1\r\nHost: demo\r\nConnection: Upgrade\r\nUpgrade: WebSocket\r\n"
                + "Pinhole-Upgrade: smuggled\r\nSec-WebSocket-Key: a2V5\r\n\r\n")
        let request = try ProxyRequestHead(publicRequest: webSocket, clientAddress: nil)
        #expect(request.upgrade == "WebSocket" && request.mayHaveBody, "its stream stays open for the new protocol")
        let fields = request.http2Headers
        #expect(fields.filter { $0.name == "pinhole-upgrade" }.map(\.value) == ["WebSocket"], "the client's is dropped")
        let atAgent = try ProxyRequestHead(http2: fields)
        #expect(atAgent.upgrade == "WebSocket" && atAgent.headers.first(name: "sec-websocket-key") == "a2V5")
        #expect(!atAgent.headers.contains(name: "pinhole-upgrade"))

        let zeroLength = try publicHead(
            "GET /chat HTTP/1.1\r\nHost: demo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: 0\r\n\r\n"
        )
        let stripped = try ProxyRequestHead(publicRequest: zeroLength, clientAddress: nil)
        #expect(stripped.upgrade == "websocket" && !stripped.headers.contains(name: "content-length"))

        for ignored in [
            "GET / HTTP/1.1\r\nHost: demo\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\r\n",
            "GET / HTTP/1.0\r\nHost: demo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
            // With a body, unframed after the head, the body would be a second request.
            "POST / HTTP/1.1\r\nHost: demo\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n",
        ] {
            let request = try ProxyRequestHead(publicRequest: try publicHead(ignored), clientAddress: nil)
            #expect(request.upgrade == nil)
            #expect(!request.headers.contains(name: "upgrade") && !request.headers.contains(name: "connection"))
        }
    }

    @Test("an app's 101 crosses the tunnel as a 200 that names the protocol, and only a 200 may")
    func switchingProtocols() throws {
        let switched = ProxyResponseHead(
            status: .switchingProtocols, headers: ["Sec-WebSocket-Accept": "abc"], upgrade: "websocket")
        let fields = switched.http2Headers
        let list = Array(fields)
        #expect(list.first?.value == "200" && list.contains { $0 == ("pinhole-upgraded", "websocket") })
        #expect(try ProxyResponseHead(http2: fields) == switched)
        #expect(throws: ExchangeError.self) {
            try ProxyResponseHead(http2: [(":status", "204"), ("pinhole-upgraded", "websocket")])
        }
        let request = ProxyRequestHead(method: .GET, path: "/", authority: "a", scheme: "http", headers: [:])
        #expect(!switched.hasBody(for: request), "no switch for a request that did not ask")
        var asked = request
        asked.upgrade = "websocket"
        #expect(switched.hasBody(for: asked), "the new protocol's bytes are the body")
    }

    @Test("a request without Host is malformed")
    func missingHost() throws {
        let head = try publicHead("GET / HTTP/1.1\r\n\r\n")
        #expect(throws: ExchangeError.self) {
            try ProxyRequestHead(publicRequest: head, clientAddress: nil)
        }
    }
}
