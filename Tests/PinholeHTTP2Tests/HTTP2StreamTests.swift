import NIOCore
import PinholeTLS
import Testing

@testable import PinholeHTTP2

@Suite("HTTP/2 streams in memory")
struct HTTP2StreamTests {
    /// Deterministic body for stream `index`: its length and bytes both depend on it.
    static func body(for index: Int) -> ByteBuffer {
        let length = 1_000 + (index * 7_919) % 40_000
        let start = (index * 104_729) % (noise.count - length)
        var buffer = ByteBuffer(bytes: noise[start..<(start + length)])
        buffer.setInteger(UInt32(index), at: 0)
        return buffer
    }

    private static let noise: [UInt8] = {
        var state: UInt32 = 2_463_534_242
        return (0..<(256 * 1024)).map { _ in
            state ^= state << 13
            state ^= state >> 17
            state ^= state << 5
            return UInt8(truncatingIfNeeded: state)
        }
    }()

    @Test("1,000 concurrent streams with interleaved bodies, every byte checked")
    func thousandStreams() throws {
        var responders: [EchoResponder] = []
        let pair = try InMemoryHTTP2Pair { _ in
            let responder = EchoResponder()
            responders.append(responder)
            return responder
        }
        let count = 1_000
        var delegates: [RecordingDelegate] = []
        var streams: [HTTP2Stream] = []
        var bodies = (0..<count).map(Self.body(for:))
        for index in 0..<count {
            let delegate = RecordingDelegate()
            delegates.append(delegate)
            streams.append(
                try pair.clientConnection.openStream(headers: requestHeaders(path: "/\(index)"), delegate: delegate))
        }
        // Interleave: a 4 KiB piece of every body in turn, with bytes moving in between.
        while bodies.contains(where: { $0.readableBytes > 0 }) {
            for index in 0..<count where bodies[index].readableBytes > 0 {
                let piece = bodies[index].readSlice(length: min(4096, bodies[index].readableBytes))!
                streams[index].sendData(piece, endStream: bodies[index].readableBytes == 0)
            }
            try pair.interact()
        }
        try pair.interact()

        for index in 0..<count {
            let delegate = delegates[index]
            #expect(delegate.headers?[":status"] == "200")
            #expect(delegate.ended && delegate.closed && delegate.error == nil)
            #expect(delegate.body == Self.body(for: index), "stream \(index) body differs")
            #expect(!delegate.sawReentrantCall)
        }
        #expect(responders.count == count && !responders.contains { $0.sawReentrantCall })
        #expect(pair.clientConnection.activeStreamCount == 0 && pair.serverConnection.activeStreamCount == 0)
    }

    @Test("a stalled consumer holds back only its own stream, bounded by its window")
    func stalledConsumer() throws {
        let size = 4 * 1024 * 1024
        let window = 128 * 1024
        var configuration = HTTP2Configuration()
        configuration.streamWindowSize = window
        var producers: [HTTP2Stream] = []
        let pair = try InMemoryHTTP2Pair(clientConfiguration: configuration) { stream in
            producers.append(stream)
            return RecordingDelegate()
        }
        let stalled = RecordingDelegate()
        stalled.consumes = false
        let flowing = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: stalled)
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: flowing)
        try pair.interact()
        #expect(producers.count == 2)
        for producer in producers {
            producer.sendHeaders([(":status", "200")])
            // The server queues the whole body; flow control decides what crosses.
            producer.sendData(ByteBuffer(repeating: 0x42, count: size), endStream: true)
        }
        try pair.interact()

        #expect(flowing.body.readableBytes == size && flowing.ended)
        #expect(stalled.body.readableBytes <= window, "received \(stalled.body.readableBytes) without consuming")
        #expect(stalled.body.readableBytes > 0 && !stalled.ended)
        #expect(producers[0].outgoingBytes >= size - window, "the stalled stream's data waits at the sender")
        #expect(!producers[0].isWritable && producers[1].isWritable)
    }

    @Test(
        "DATA frames grow to the peer's SETTINGS_MAX_FRAME_SIZE, never past it",
        arguments: [16 * 1024, 64 * 1024])
    func dataFrameSize(peerMaxFrameSize: Int) throws {
        var serverConfiguration = HTTP2Configuration()
        serverConfiguration.maxFrameSize = peerMaxFrameSize
        let receiver = RecordingDelegate()
        let pair = try InMemoryHTTP2Pair(serverConfiguration: serverConfiguration) { _ in receiver }
        let body = ByteBuffer(repeating: 0x61, count: 256 * 1024)
        let stream = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: RecordingDelegate())
        stream.sendData(body, endStream: true)
        try pair.interact()
        #expect(receiver.body == body && receiver.ended)
        #expect(receiver.largestDataPart == peerMaxFrameSize)
    }

    @Test("a large DATA payload goes out as a slice of the sender's buffer, small ones are copied, order kept")
    func largePayloadsAreSliced() throws {
        let receiver = RecordingDelegate()
        let pair = try InMemoryHTTP2Pair { _ in receiver }
        let large = ByteBuffer(bytes: (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        let stream = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: RecordingDelegate())
        stream.sendData(ByteBuffer(string: "small before|"))
        stream.sendData(large)
        stream.sendData(ByteBuffer(string: "|small after"), endStream: true)
        pair.client.embeddedEventLoop.run()

        var written: [ByteBuffer] = []
        while let buffer = try pair.client.readOutbound(as: ByteBuffer.self) { written.append(buffer) }
        let largeBase = large.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let sliced = written.filter { buffer in
            buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } == largeBase
        }
        #expect(sliced.count == 1 && sliced.first?.readableBytes == large.readableBytes, "written: \(written)")
        #expect(written.count >= 3, "frames before and after the slice are separate writes")

        for buffer in written { try pair.server.writeInbound(buffer) }
        try pair.interact()
        var expected = ByteBuffer(string: "small before|")
        expected.writeImmutableBuffer(large)
        expected.writeString("|small after")
        #expect(receiver.body == expected && receiver.ended)
    }

    @Test("completed messages go out in batches of messagesPerWrite, the rest at the end of the tick")
    func completedMessagesBatch() throws {
        var clientConfiguration = HTTP2Configuration()
        clientConfiguration.messagesPerWrite = 2
        let pair = try InMemoryHTTP2Pair(clientConfiguration: clientConfiguration) { _ in RecordingDelegate() }
        func request() throws {
            _ = try pair.clientConnection.openStream(
                headers: requestHeaders(method: "GET"), endStream: true, delegate: RecordingDelegate())
            pair.clientConnection.completedMessage()
        }
        try request()
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) == nil, "one message waits for the tick")
        try request()
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) != nil, "the second completes a batch")
        try request()
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) == nil)
        pair.client.embeddedEventLoop.run()
        #expect(try pair.client.readOutbound(as: ByteBuffer.self) != nil, "the end of the tick sends the rest")
    }

    @Test("header names go out lowercase whatever their case in the list")
    func namesLowercasedOnSend() throws {
        let receiver = RecordingDelegate()
        let pair = try InMemoryHTTP2Pair { _ in receiver }
        var headers = requestHeaders(method: "GET")
        headers.add(name: "X-Trace-ID", value: "Abc-1")
        _ = try pair.clientConnection.openStream(headers: headers, endStream: true, delegate: RecordingDelegate())
        try pair.interact()
        #expect(receiver.headers?["x-trace-id"] == "Abc-1", "\(String(describing: receiver.headers))")
        #expect(receiver.ended)
    }

    @Test("a stream knows, at its HEADERS, whether they ended it, even when its DATA came in the same read")
    func headersEndedStream() throws {
        /// Records `headersEndedStream` as `.headers` is delivered.
        final class Probe: HTTP2StreamDelegate {
            var seen: [String: Bool] = [:]
            func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
                if case .headers(let fields) = part { seen[fields[":path"] ?? ""] = stream.headersEndedStream }
            }
            func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {}
            func streamWritabilityChanged(_ stream: HTTP2Stream) {}
        }
        let probe = Probe()
        let pair = try InMemoryHTTP2Pair { _ in probe }
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(path: "/get", method: "GET"), endStream: true, delegate: RecordingDelegate())
        let post = try pair.clientConnection.openStream(
            headers: requestHeaders(path: "/post"), delegate: RecordingDelegate())
        post.sendData(ByteBuffer(string: "body"), endStream: true)
        // Both requests, the POST's HEADERS, DATA and end included, reach the server in one read.
        try pair.interact()
        #expect(probe.seen == ["/get": true, "/post": false])
    }

    @Test("trailers both ways")
    func trailers() throws {
        final class TrailerResponder: HTTP2StreamDelegate {
            var requestTrailers: HTTP2Headers?
            func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
                switch part {
                case .trailers(let trailers):
                    requestTrailers = trailers
                case .end:
                    stream.sendHeaders([(":status", "200")])
                    stream.sendData(ByteBuffer(string: "body"))
                    stream.sendTrailers([("grpc-status", "0"), ("x-checksum", "abc")])
                default: break
                }
            }
            func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {}
            func streamWritabilityChanged(_ stream: HTTP2Stream) {}
        }
        let responder = TrailerResponder()
        let pair = try InMemoryHTTP2Pair { _ in responder }
        let delegate = RecordingDelegate()
        let stream = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: delegate)
        stream.sendData(ByteBuffer(string: "upload"))
        stream.sendTrailers([("x-upload-digest", "123")])
        try pair.interact()
        #expect(responder.requestTrailers == [("x-upload-digest", "123")])
        #expect(String(buffer: delegate.body) == "body")
        #expect(delegate.trailers == [("grpc-status", "0"), ("x-checksum", "abc")])
        #expect(delegate.ended && delegate.error == nil)
    }

    @Test("a reset in the middle of a body reaches the other side with its code")
    func resetMidBody() throws {
        let serverStreams = ServerStreams()
        let serverDelegate = serverStreams.delegate
        let pair = try InMemoryHTTP2Pair(acceptor: serverStreams.accept)
        let delegate = RecordingDelegate()
        let stream = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: delegate)
        try pair.interact()
        let server = try #require(serverStreams.last)
        server.sendHeaders([(":status", "200")])
        server.sendData(ByteBuffer(string: "partial "))
        try pair.interact()
        server.reset(.cancel)
        try pair.interact()
        #expect(String(buffer: delegate.body) == "partial ")
        #expect(delegate.closed && !delegate.ended)
        #expect(delegate.error == .streamReset(streamID: stream.id, code: .cancel))
        #expect(delegate.error?.description == "peer reset stream 1: CANCEL")
        #expect(serverDelegate.closed)

        // And the other way: the client gives up on an upload half-way.
        let upload = RecordingDelegate()
        let second = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: upload)
        second.sendData(ByteBuffer(string: "half"))
        try pair.interact()
        second.reset(.cancel)
        try pair.interact()
        #expect(upload.closed)
        #expect(serverDelegate.error == .streamReset(streamID: second.id, code: .cancel))
    }

    @Test("a reset after queued, in the tick that queued HEADERS and data: the peer gets both, then the reset")
    func resetAfterQueued() throws {
        let serverStreams = ServerStreams()
        let pair = try InMemoryHTTP2Pair(acceptor: serverStreams.accept)
        /// A GET, once the server has its stream: the client's delegate and stream, and the server's stream.
        func request() throws -> (RecordingDelegate, HTTP2Stream, HTTP2Stream) {
            let delegate = RecordingDelegate()
            let stream = try pair.clientConnection.openStream(
                headers: requestHeaders(method: "GET"), endStream: true, delegate: delegate)
            try pair.interact()
            return (delegate, stream, try #require(serverStreams.last))
        }

        let (delegate, stream, server) = try request()
        server.sendHeaders([(":status", "200")])
        server.sendData(ByteBuffer(string: "partial "))
        server.resetAfterQueued(.cancel)
        server.sendData(ByteBuffer(string: "never sent"), endStream: true)
        try pair.interact()
        #expect(delegate.headers?[":status"] == "200")
        #expect(String(buffer: delegate.body) == "partial ")
        #expect(delegate.closed && !delegate.ended)
        #expect(delegate.error == .streamReset(streamID: stream.id, code: .cancel))

        // A plain reset in the same tick as the HEADERS still drops them (nghttp2's way).
        let (second, plain, secondServer) = try request()
        secondServer.sendHeaders([(":status", "200")])
        secondServer.reset(.internalError)
        try pair.interact()
        #expect(second.headers == nil)
        #expect(second.error == .streamReset(streamID: plain.id, code: .internalError))

        // Nothing queued after the HEADERS went out: the provider waits, and the reset comes.
        let (third, idle, thirdServer) = try request()
        thirdServer.sendHeaders([(":status", "200")])
        try pair.interact()
        #expect(third.headers?[":status"] == "200" && !third.closed)
        thirdServer.resetAfterQueued(.internalError)
        try pair.interact()
        #expect(third.error == .streamReset(streamID: idle.id, code: .internalError))
        #expect(pair.clientConnection.activeStreamCount == 0 && pair.serverConnection.activeStreamCount == 0)
    }

    @Test("an answer complete before its request's end: the peer gets it whole, then RST_STREAM(NO_ERROR)")
    func stopPeerOnceEnded() throws {
        let serverStreams = ServerStreams()
        let serverDelegate = serverStreams.delegate
        let pair = try InMemoryHTTP2Pair(acceptor: serverStreams.accept)
        let upload = RecordingDelegate()
        let stream = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: upload)
        stream.sendData(ByteBuffer(string: "first part"))
        try pair.interact()
        let server = try #require(serverStreams.last)
        server.stopPeerOnceEnded()
        server.sendHeaders([(":status", "413")])
        server.sendData(ByteBuffer(string: "too large"), endStream: true)
        try pair.interact()
        #expect(upload.headers?[":status"] == "413" && String(buffer: upload.body) == "too large")
        #expect(upload.ended, "the answer is whole: its END_STREAM came before the reset")
        #expect(upload.closed && upload.error == nil, "after the whole answer, a reset with NO_ERROR is no error")
        #expect(serverDelegate.closed && serverDelegate.error == nil, "no error on the side that answered")
        #expect(pair.clientConnection.activeStreamCount == 0 && pair.serverConnection.activeStreamCount == 0)

        // A request that ended first is not reset: its stream closes as any other.
        let whole = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: whole)
        try pair.interact()
        let second = try #require(serverStreams.last)
        second.stopPeerOnceEnded()
        second.sendHeaders([(":status", "200")], endStream: true)
        try pair.interact()
        #expect(whole.ended && whole.closed && whole.error == nil)

        // NO_ERROR before the whole answer still cuts it: an error for the client.
        let cut = RecordingDelegate()
        let third = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: cut)
        try pair.interact()
        let thirdServer = try #require(serverStreams.last)
        thirdServer.sendHeaders([(":status", "200")])
        try pair.interact()
        thirdServer.reset(.noError)
        try pair.interact()
        #expect(!cut.ended && cut.error == .streamReset(streamID: third.id, code: .noError))
    }

    @Test("PING reports a round-trip time")
    func ping() throws {
        let pair = try InMemoryHTTP2Pair { _ in RecordingDelegate() }
        // Results are collected rather than waited for: a lost ack must fail the test,
        // not block it.
        var fromClient: Result<TimeAmount, any Error>?
        pair.clientConnection.ping().assumeIsolated().whenComplete { fromClient = $0 }
        try pair.interact()
        _ = try #require(fromClient, "the client's PING was not answered").get()
        var fromServer: Result<TimeAmount, any Error>?
        pair.serverConnection.ping().assumeIsolated().whenComplete { fromServer = $0 }
        try pair.interact()
        _ = try #require(fromServer, "the server's PING was not answered").get()
    }

    @Test("the peer's SETTINGS_MAX_CONCURRENT_STREAMS is honoured")
    func maxConcurrentStreams() throws {
        var serverConfiguration = HTTP2Configuration()
        serverConfiguration.maxConcurrentStreams = 5
        var open: [HTTP2Stream] = []
        var peak = 0
        let pair = try InMemoryHTTP2Pair(serverConfiguration: serverConfiguration) { stream in
            open.append(stream)
            return RecordingDelegate()
        }
        var delegates: [RecordingDelegate] = []
        for _ in 0..<40 {
            let delegate = RecordingDelegate()
            delegates.append(delegate)
            _ = try pair.clientConnection.openStream(
                headers: requestHeaders(method: "GET"), endStream: true, delegate: delegate)
        }
        // Answer streams a few at a time; the client must never have more than 5 open at the server.
        while delegates.contains(where: { !$0.closed }) {
            try pair.interact()
            peak = max(peak, pair.serverConnection.activeStreamCount)
            let batch = open
            open.removeAll()
            if batch.isEmpty {
                if delegates.contains(where: { !$0.closed }) { Issue.record("the client stopped opening streams") }
                break
            }
            for stream in batch { stream.sendHeaders([(":status", "204")], endStream: true) }
        }
        #expect(peak <= 5 && peak > 0)
        #expect(delegates.allSatisfy { $0.headers?[":status"] == "204" && $0.error == nil })
    }
}
