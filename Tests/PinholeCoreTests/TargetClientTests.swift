import NIOCore
import NIOHTTP1
import NIOPosix
import PinholeTestSupport
import Testing

@testable import PinholeCore

@Suite("The agent's client for its target", .timeLimit(.minutes(1)))
struct TargetClientTests {
    @Test("an exchange cancelled while its connection opens sends nothing to the app")
    func cancelledWhileConnecting() async throws {
        let app = try await LocalApp.start()
        defer { Task { await app.stop() } }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let client = TargetClient(address: TargetAddress(host: "127.0.0.1", port: app.port))
        let head = ProxyRequestHead(
            method: .GET, path: "/", authority: "app.test", scheme: "http", headers: HTTPHeaders(), mayHaveBody: false)

        // Cancelled in the same tick it started: its connection is still opening.
        try await loop.submit {
            let upstream = try client.startExchange(head, downstream: StatusRecorder(nil), on: loop)
            upstream.sendEnd(trailers: nil)
            upstream.cancel()
        }.get()
        // Two more, one after the other. Had the first gone out when its connection
        // opened, the app would have seen it long before these two are answered.
        for _ in 0..<2 {
            let answered = loop.makePromise(of: Int.self)
            try await loop.submit {
                let upstream = try client.startExchange(head, downstream: StatusRecorder(answered), on: loop)
                upstream.sendEnd(trailers: nil)
            }.get()
            #expect(try await answered.futureResult.get() == 200)
        }
        #expect(app.requestsSeen == 2)
    }
}

/// Completes `answered` with the response's status once the response has ended.
private final class StatusRecorder: ExchangeDownstream {
    private let answered: EventLoopPromise<Int>?
    private var status = 0

    init(_ answered: EventLoopPromise<Int>?) {
        self.answered = answered
    }

    var isWritable: Bool { true }
    func exchangeReceivedHead(_ head: ProxyResponseHead) { status = Int(head.status.code) }
    func exchangeReceivedBody(_ body: ByteBuffer) {}
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { answered?.succeed(status) }
    func exchangeFailed(_ error: ExchangeError) { answered?.fail(error) }
    func exchangeUpstreamWritabilityChanged() {}
}
