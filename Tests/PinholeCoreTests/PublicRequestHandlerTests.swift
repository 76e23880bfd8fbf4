import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import Testing

@Suite("Public request handler in memory: head and idle timeouts")
struct PublicRequestHandlerTests {
    /// Routes nothing: every complete request gets a 404.
    struct NoRoutes: PublicRouter {
        func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
            throw .noRoute(host: host)
        }
    }

    /// Answers every request with an empty 200 after `delay`, like an app that sat at a
    /// breakpoint for that long.
    struct SlowTarget: PublicRouter, ExchangeTarget {
        let delay: TimeAmount

        func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget { self }

        func startExchange(
            _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
        ) throws(ExchangeError) -> any ExchangeUpstream {
            eventLoop.assumeIsolated().scheduleTask(in: delay) {
                downstream.exchangeReceivedHead(ProxyResponseHead(status: .ok, headers: ["content-length": "0"]))
                downstream.exchangeReceivedEnd(trailers: nil)
            }
            return IgnoringUpstream()
        }
    }

    final class IgnoringUpstream: ExchangeUpstream {
        func sendBody(_ body: ByteBuffer) {}
        func sendEnd(trailers: HTTPHeaders?) {}
        func cancel() {}
        func downstreamWritabilityChanged() {}
        var canTakeRequestBody: Bool { true }
    }

    private func channel(
        router: any PublicRouter = NoRoutes(), idleTimeout: TimeAmount? = .seconds(1)
    ) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            PublicRequestHandler(router: router, headTimeout: .milliseconds(100), idleTimeout: idleTimeout))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    private func answer(_ channel: EmbeddedChannel) throws -> String? {
        try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
    }

    @Test("a head begun and not finished in time gets 408")
    func unfinishedHead() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(60))
        try channel.writeInbound(ByteBuffer(string: "\r\nX-Slow: 1"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(39))
        #expect(try answer(channel) == nil, "more bytes do not restart the clock, but it has not run out yet")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        let text = try #require(try answer(channel))
        #expect(text.hasPrefix("HTTP/1.1 408 Request Timeout\r\n") && text.contains("did not arrive within"))
    }

    @Test("a head finished in time is answered normally")
    func finishedHead() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(90))
        try channel.writeInbound(ByteBuffer(string: "\r\n\r\n"))
        let text = try #require(try answer(channel))
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(text)")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try answer(channel) == nil)
    }

    @Test("a connection that sends nothing is closed, unanswered, after the head timeout")
    func silentConnection() throws {
        let channel = try channel()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(99))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive)
        #expect(try answer(channel) == nil, "there was no request to answer")
    }

    @Test("after a request, a connection idle for the idle timeout is closed; one in use is not")
    func idleAfterRequests() throws {
        let channel = try channel(router: SlowTarget(delay: .seconds(5)))
        try channel.writeInbound(ByteBuffer(string: "GET /held HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(4_999))
        #expect(channel.isActive, "a request waiting 5 s for its answer keeps the connection")
        #expect(try answer(channel) == nil)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(try answer(channel)?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)

        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive, "idle for 999 ms of 1 s")
        try channel.writeInbound(ByteBuffer(string: "\r\n"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive, "blank lines between requests are not a request, and do not restart the clock")
        #expect(try answer(channel) == nil)
    }

    @Test("an idle timeout shorter than the head timeout still applies on time")
    func shortIdleTimeout() throws {
        let channel = try channel(router: SlowTarget(delay: .zero), idleTimeout: .milliseconds(20))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(30))
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.embeddedEventLoop.run()
        #expect(try answer(channel)?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(19))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive, "closed 20 ms after the answer, not at the 100 ms head timeout")
    }

    @Test("a request whose body is still arriving is not idle, however long it takes")
    func bodyInFlight() throws {
        let channel = try channel(router: SlowTarget(delay: .seconds(10)))
        try channel.writeInbound(ByteBuffer(string: "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(3))
        #expect(channel.isActive)
        try channel.writeInbound(ByteBuffer(string: "67890"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(7))
        #expect(try answer(channel)?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        #expect(channel.isActive)
    }

    @Test("with no idle timeout, a connection that has carried a request stays open")
    func noIdleTimeout() throws {
        let channel = try channel(router: SlowTarget(delay: .zero), idleTimeout: nil)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.embeddedEventLoop.run()
        #expect(try answer(channel)?.hasPrefix("HTTP/1.1 200 OK\r\n") == true)
        channel.embeddedEventLoop.advanceTime(by: .hours(3))
        #expect(channel.isActive)
    }
}
