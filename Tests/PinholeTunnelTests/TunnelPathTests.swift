import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2
import PinholeTestSupport
import PinholeTunnel
import Testing

/// The tunnel's path in memory, without sockets: relay side (`TunnelTarget`, whose
/// exchanges are `TunnelStreamUpstream`s) to agent side (`AgentStreamResponder`) to an app.
@Suite("Tunnel path in memory: TunnelStreamUpstream and AgentStreamResponder")
struct TunnelPathTests {
    @Test("a GET crosses as one stream: head in, answer with body and trailers out, one record")
    func getCrosses() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        _ = try tunnel.start(request(.GET, "/greet?name=ada", headers: ["x-user": "debug"]), downstream: client)

        let exchange = try #require(tunnel.app.exchanges.first)
        #expect(exchange.head.method == .GET && exchange.head.path == "/greet?name=ada")
        #expect(exchange.head.authority == "demo.tunnel.test")
        #expect(exchange.head.headers.first(name: "x-user") == "debug")
        #expect(!exchange.head.mayHaveBody, "HEADERS ended the stream: the agent knows there is no body")

        exchange.answer(.ok, body: "hello, ada", trailers: ["x-checksum": "42"])
        try tunnel.interact()
        #expect(client.head?.status == .ok)
        #expect(client.bodyText == "hello, ada")
        #expect(client.ended && client.trailers?.first(name: "x-checksum") == "42")
        #expect(client.failure == nil)
        #expect(tunnel.records.map(\.status) == [200])
        #expect(tunnel.relayConnection.activeStreamCount == 0 && tunnel.agentConnection.activeStreamCount == 0)
    }

    @Test("a request body streams piece by piece, and its trailers go with its end")
    func uploadStreams() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        let upstream = try tunnel.start(request(.POST, "/upload", mayHaveBody: true), downstream: client)
        let exchange = try #require(tunnel.app.exchanges.first)

        upstream.sendBody(ByteBuffer(string: "first "))
        try tunnel.interact()
        #expect(String(buffer: exchange.body) == "first ", "the first piece arrives before the end")
        #expect(!exchange.ended)
        upstream.sendBody(ByteBuffer(string: "second"))
        upstream.sendEnd(trailers: ["x-digest": "abc"])
        try tunnel.interact()
        #expect(String(buffer: exchange.body) == "first second")
        #expect(exchange.ended && exchange.trailers?.first(name: "x-digest") == "abc")

        exchange.answer(.created)
        try tunnel.interact()
        #expect(client.head?.status == .created && client.ended)
    }

    @Test("an app that cannot be reached: the agent answers with the error's status and words")
    func targetRefuses() throws {
        let tunnel = try InMemoryTunnel()
        tunnel.app.refusal = .targetUnreachable(target: "http://localhost:3000", reason: "connection refused")
        let client = RecordingDownstream()
        _ = try tunnel.start(request(), downstream: client)
        #expect(client.head?.status == .badGateway)
        #expect(client.bodyText.contains("could not reach http://localhost:3000: connection refused"))
        #expect(client.ended)
        #expect(tunnel.records.map(\.status) == [502])
    }

    @Test("the public client goes away: the stream is reset and the app's exchange cancelled")
    func clientCancels() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        let upstream = try tunnel.start(request(.POST, "/slow", mayHaveBody: true), downstream: client)
        let exchange = try #require(tunnel.app.exchanges.first)
        #expect(!exchange.cancelled)
        upstream.cancel()
        try tunnel.interact()
        #expect(exchange.cancelled)
        #expect(tunnel.agentConnection.activeStreamCount == 0)
    }

    @Test("an answer before the request's end resets the stream, so it does not hold a stream slot")
    func answerBeforeBodyEnds() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        let upstream = try tunnel.start(request(.POST, "/upload", mayHaveBody: true), downstream: client)
        upstream.sendBody(ByteBuffer(string: "part of a large upload"))
        try tunnel.interact()
        let exchange = try #require(tunnel.app.exchanges.first)
        exchange.answer(.payloadTooLarge, body: "too big")
        try tunnel.interact()
        #expect(client.head?.status == .payloadTooLarge && client.bodyText == "too big" && client.ended)
        #expect(tunnel.relayConnection.activeStreamCount == 0)
        #expect(tunnel.agentConnection.activeStreamCount == 0)
    }

    @Test(
        "an answer before the app took the whole request, whose end the relay had handed over: the agent drops the rest, so the stream ends and holds no slot"
    )
    func answerBeforeTheAppTookTheBody() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        let upstream = try tunnel.start(request(.PUT, "/upload", mayHaveBody: true), downstream: client)
        let exchange = try #require(tunnel.app.exchanges.first)
        // The app reads none of it, so the agent gives no window back: most of the body,
        // and the request's end after it, wait at the relay.
        exchange.canTakeRequestBody = false
        let piece = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
        for _ in 0..<64 { upstream.sendBody(piece) }
        upstream.sendEnd(trailers: nil)
        try tunnel.interact()
        #expect(!exchange.ended, "the request's end is still held back at the relay")
        let taken = exchange.body.readableBytes
        exchange.answer(.unauthorized, body: "who are you")
        try tunnel.interact()
        #expect(client.head?.status == .unauthorized && client.bodyText == "who are you" && client.ended)
        #expect(client.failure == nil)
        #expect(exchange.body.readableBytes == taken, "the rest did not reach the app")
        #expect(exchange.cancelled && !exchange.ended, "nor was it told the body ended whole")
        #expect(tunnel.records.map(\.status) == [401])
        #expect(tunnel.relayConnection.activeStreamCount == 0)
        #expect(tunnel.agentConnection.activeStreamCount == 0)
    }

    @Test(
        "a complete bodiless answer (a 204) to an unfinished upload: the app side is cancelled, not left waiting for the rest"
    )
    func bodyAfterABodilessAnswer() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        let upstream = try tunnel.start(request(.PUT, "/upload", mayHaveBody: true), downstream: client)
        upstream.sendBody(ByteBuffer(string: "first part"))
        try tunnel.interact()
        let exchange = try #require(tunnel.app.exchanges.first)
        exchange.downstream?.exchangeReceivedHead(ProxyResponseHead(status: .noContent))
        try tunnel.interact()
        #expect(client.head?.status == .noContent && client.ended)
        upstream.sendBody(ByteBuffer(string: "second part"))
        upstream.sendEnd(trailers: nil)
        try tunnel.interact()
        #expect(String(buffer: exchange.body) == "first part")
        #expect(exchange.cancelled && !exchange.ended, "the relay reset the stream; the app hears of it")
    }

    @Test("the app fails right after its head, in the same tick: the relay's client sees the head, then the cut")
    func failureAfterHead() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        _ = try tunnel.start(request(), downstream: client)
        let exchange = try #require(tunnel.app.exchanges.first)
        exchange.downstream?.exchangeReceivedHead(ProxyResponseHead(status: .ok, headers: ["content-length": "100"]))
        exchange.downstream?.exchangeReceivedBody(ByteBuffer(string: "nine byte"))
        // No bytes move in between: nghttp2 has not written the HEADERS when the reset comes.
        exchange.downstream?.exchangeFailed(.targetClosedEarly(target: "http://localhost:3000"))
        try tunnel.interact()
        #expect(client.head?.status == .ok && client.bodyText == "nine byte", "the head and body go out first")
        #expect(!client.ended)
        #expect(tunnel.records.map(\.status) == [200], "the agent logs what the app began to answer")
        // The agent resets the stream (INTERNAL_ERROR), and the reset passes on as one.
        guard case .streamReset(let code, _) = client.failure else {
            Issue.record("expected the exchange to fail as reset, got \(String(describing: client.failure))")
            return
        }
        #expect(code == 2, "INTERNAL_ERROR")
    }

    @Test("--request-timeout: an app that sits on a request gets a 504 at the agent, and is cancelled")
    func requestTimeout() throws {
        let tunnel = try InMemoryTunnel(requestTimeout: .seconds(3))
        let client = RecordingDownstream()
        _ = try tunnel.start(request(), downstream: client)
        let exchange = try #require(tunnel.app.exchanges.first)
        tunnel.agent.embeddedEventLoop.advanceTime(by: .seconds(2))
        try tunnel.interact()
        #expect(client.head == nil, "not before its time")
        tunnel.agent.embeddedEventLoop.advanceTime(by: .seconds(1))
        try tunnel.interact()
        #expect(client.head?.status == .gatewayTimeout)
        #expect(client.bodyText.contains("no response within 3 s"))
        #expect(exchange.cancelled)
    }

    @Test("a WebSocket handshake: the app's 101 crosses as a 200 that names the protocol, and comes out a 101")
    func switchingProtocols() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        let upstream = try tunnel.start(
            request(.GET, "/chat", headers: ["sec-websocket-key": "a2V5"], mayHaveBody: true, upgrade: "websocket"),
            downstream: client)
        let exchange = try #require(tunnel.app.exchanges.first)
        #expect(exchange.head.upgrade == "websocket")
        exchange.downstream?.exchangeReceivedHead(
            ProxyResponseHead(
                status: .switchingProtocols, headers: ["sec-websocket-accept": "abc"], upgrade: "websocket"))
        exchange.downstream?.exchangeReceivedBody(ByteBuffer(string: "from app"))
        upstream.sendBody(ByteBuffer(string: "from client"))
        try tunnel.interact()
        #expect(client.head?.status == .switchingProtocols && client.head?.upgrade == "websocket")
        #expect(client.bodyText == "from app")
        #expect(String(buffer: exchange.body) == "from client")
    }

    @Test("a tunnel that goes down mid-request fails the exchange with the host and the reason")
    func tunnelDrops() throws {
        let tunnel = try InMemoryTunnel()
        let client = RecordingDownstream()
        _ = try tunnel.start(request(), downstream: client)
        try tunnel.agent.close().wait()
        try tunnel.relay.close().wait()
        try tunnel.interact()
        guard case .tunnelLost(let host, _) = client.failure else {
            Issue.record("expected tunnelLost, got \(String(describing: client.failure))")
            return
        }
        #expect(host == "demo.tunnel.test")
    }
}
