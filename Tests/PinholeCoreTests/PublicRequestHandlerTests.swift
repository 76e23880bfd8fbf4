import NIOCore
import NIOEmbedded
import PinholeCore
import Testing

@Suite("Public request handler in memory: the head timeout")
struct PublicRequestHandlerTests {
    /// Routes nothing: every complete request gets a 404.
    struct NoRoutes: PublicRouter {
        func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
            throw .noRoute(host: host)
        }
    }

    private func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            PublicRequestHandler(router: NoRoutes(), headTimeout: .milliseconds(100)))
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

    @Test("a head finished in time is answered normally, and a quiet connection is not timed")
    func finishedHead() throws {
        let channel = try channel()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: a"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(90))
        try channel.writeInbound(ByteBuffer(string: "\r\n\r\n"))
        let text = try #require(try answer(channel))
        #expect(text.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(text)")
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try answer(channel) == nil)

        let quiet = try self.channel()
        quiet.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try answer(quiet) == nil && quiet.isActive)
    }
}
