import NIOCore
import Testing

@testable import PinholeHTTP2

/// The relay cancels a stream whenever a public client gives up: the agent (the HTTP/2
/// server) must take that as normal work, and still stop a peer that does nothing else.
@Suite("Stream resets: the relay's cancellations never end a tunnel; an endless flood does")
struct StreamResetLimitTests {
    /// Opens `count` streams from the client and resets each (after the server has seen
    /// its HEADERS), in rounds; returns whether the server ended the connection.
    private func resetStreams(_ count: Int, serverConfiguration: HTTP2Configuration) throws -> Bool {
        let streams = ServerStreams()
        let pair = try InMemoryHTTP2Pair(serverConfiguration: serverConfiguration, acceptor: streams.accept)
        for _ in 0..<(count / 100) {
            var opened: [HTTP2Stream] = []
            for _ in 0..<100 {
                opened.append(
                    try pair.clientConnection.openStream(headers: requestHeaders(), delegate: RecordingDelegate()))
            }
            try pair.interact()
            for stream in opened { stream.reset(.cancel) }
            try pair.interact()
            if pair.clientConnection.goAwayReceived != nil { return true }
        }
        return false
    }

    @Test("1,200 streams cancelled at once by the relay: the agent carries on")
    func cancellationsAreNormal() throws {
        // nghttp2's own allowance (1,000, then 33 a second) ended the connection here.
        #expect(try !resetStreams(1_200, serverConfiguration: HTTP2Configuration()))
    }

    @Test("a peer that resets past the configured allowance is cut off")
    func floodIsBounded() throws {
        var configuration = HTTP2Configuration()
        configuration.streamResetBurst = 300
        configuration.streamResetsPerSecond = 1
        #expect(try resetStreams(1_200, serverConfiguration: configuration))
    }
}
