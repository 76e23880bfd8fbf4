import NIOCore
import NIOEmbedded
import PinholeCore
import Testing

/// Issue 20, the public side: every public connection ever closed stayed in memory
/// (about 3 KB each) until the handler let go of its context.
@Suite("A closed public connection leaves nothing behind")
struct PublicConnectionLifetimeTests {
    struct NoRoutes: PublicRouter {
        func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
            throw .noRoute(host: host)
        }
    }

    @Test("the handler is freed once its connection has closed, after serving a request")
    func handlerFreed() throws {
        let channel = EmbeddedChannel()
        weak var handler: PublicRequestHandler?
        do {
            let added = PublicRequestHandler(router: NoRoutes())
            handler = added
            try channel.pipeline.syncOperations.addHandler(added)
        }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: nobody.test\r\n\r\n"))
        let answer = try channel.readOutbound(as: ByteBuffer.self).map { String(buffer: $0) }
        #expect(answer?.hasPrefix("HTTP/1.1 404") == true)
        // An error answer closes the connection itself; close it in case it did not.
        if channel.isActive { try channel.close().wait() }
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        #expect(handler == nil, "the closed connection's handler is still alive")
    }
}
