import NIOHTTP1
import Testing

@testable import PinholeCore

@Suite("Proxy heads: a field the proxy sets, and whether a response has a body")
struct ProxyHeadsTests {
    @Test("replaceOrAppend replaces a field of any case with one field, and appends one that is absent")
    func replaceOrAppend() {
        var headers = HTTPHeaders([("X-Pinhole-Tunnel", "app's own"), ("x-other", "1"), ("x-pinhole-tunnel", "again")])
        headers.replaceOrAppend(name: "x-pinhole-tunnel", value: "alice")
        headers.replaceOrAppend(name: "x-new", value: "2")
        #expect(headers[canonicalForm: "x-pinhole-tunnel"] == ["alice"])
        #expect(headers.count == 3)
        #expect(headers.first(name: "x-other") == "1")
        #expect(headers.first(name: "x-new") == "2")
    }

    @Test("X-Forwarded-For sent on two lines keeps both, in order, before the client's address")
    func forwardedOnSeveralLines() {
        var head = ProxyRequestHead(
            method: .GET, path: "/", authority: "app.test", scheme: "http",
            headers: HTTPHeaders([
                ("X-Forwarded-For", "10.0.0.1"), ("x-other", "1"), ("x-forwarded-for", "10.0.0.2, 10.0.0.3"),
            ]))
        head.appendForwardingFields(clientAddress: "192.0.2.7", scheme: "http")
        #expect(head.headers[ForwardingFields.forName] == ["10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7"])
    }

    @Test(
        "a response's body follows RFC 9110: none to HEAD, none for 1xx, 204 and 304; a 101 carries one only for an upgrade",
        arguments: [
            (HTTPMethod.GET, nil as String?, HTTPResponseStatus.ok, true),
            (.HEAD, nil, .ok, false),
            (.GET, nil, .noContent, false),
            (.GET, nil, .notModified, false),
            (.GET, nil, .continue, false),
            (.GET, "websocket", .switchingProtocols, true),
            (.GET, nil, .switchingProtocols, false),
        ])
    func responseBody(method: HTTPMethod, upgrade: String?, status: HTTPResponseStatus, hasBody: Bool) {
        let request = ProxyRequestHead(
            method: method, path: "/", authority: "app.test", scheme: "http", headers: [:], upgrade: upgrade)
        let response = ProxyResponseHead(status: status)
        #expect(ResponseBodyRule(request).allowsBody(in: response) == hasBody)
        #expect(response.hasBody(for: request) == hasBody)
    }
}
