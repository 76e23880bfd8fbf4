import NIOCore
import NIOEmbedded
import Testing

@testable import PinholeHTTP2

@Suite("HTTP/2 connection lifecycle in memory")
struct HTTP2ConnectionTests {
    @Test("GOAWAY drain: streams in flight finish, new ones are refused with a clear error")
    func goAwayDrain() throws {
        var pending: [HTTP2Stream] = []
        let pair = try InMemoryHTTP2Pair { stream in
            pending.append(stream)
            return RecordingDelegate()
        }
        let inFlight = (0..<3).map { _ in RecordingDelegate() }
        for delegate in inFlight {
            _ = try pair.clientConnection.openStream(
                headers: requestHeaders(method: "GET"), endStream: true, delegate: delegate)
        }
        try pair.interact()
        #expect(pending.count == 3)

        pair.serverConnection.goAway(debugData: "shutting down")
        try pair.interact()
        #expect(
            pair.clientEvents.events == [.goAwayReceived(code: .noError, lastStreamID: 5, debugData: "shutting down")])
        #expect {
            try pair.clientConnection.openStream(headers: requestHeaders(), delegate: RecordingDelegate())
        } throws: { error in
            (error as? HTTP2Error)?.description == "connection closed by GOAWAY(NO_ERROR) after stream 5"
        }
        #expect(pair.client.isActive, "in-flight streams keep the connection open")

        for stream in pending { stream.sendHeaders([(":status", "200")], endStream: true) }
        try pair.interact()
        #expect(inFlight.allSatisfy { $0.headers?[":status"] == "200" && $0.ended && $0.error == nil })
        #expect(!pair.client.isActive && !pair.server.isActive, "both sides close once drained")
        #expect(pair.clientEvents.errors.isEmpty && pair.serverEvents.errors.isEmpty)
    }

    @Test("GOAWAY from the client: the server finishes the stream in flight, then both close")
    func goAwayFromClient() throws {
        let serverStreams = ServerStreams()
        let pair = try InMemoryHTTP2Pair(acceptor: serverStreams.accept)
        let inFlight = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: inFlight)
        try pair.interact()

        pair.clientConnection.goAway(debugData: "client leaving")
        try pair.interact()
        #expect(
            pair.serverEvents.events == [.goAwayReceived(code: .noError, lastStreamID: 0, debugData: "client leaving")])
        #expect(throws: HTTP2Error.connectionDraining) {
            try pair.clientConnection.openStream(headers: requestHeaders(), delegate: RecordingDelegate())
        }
        #expect(pair.client.isActive && pair.server.isActive, "the stream in flight keeps both open")

        let stream = try #require(serverStreams.last)
        stream.sendHeaders([(":status", "200")], endStream: true)
        try pair.interact()
        #expect(inFlight.headers?[":status"] == "200" && inFlight.ended && inFlight.error == nil)
        #expect(!pair.client.isActive && !pair.server.isActive, "both sides close once drained")
        #expect(pair.clientEvents.errors.isEmpty && pair.serverEvents.errors.isEmpty)
    }

    @Test("work requested from delegates runs outside nghttp2 (no reentrancy)")
    func reentrancy() throws {
        /// On every event it does more work: answers, opens, pings, resets.
        final class Busy: HTTP2StreamDelegate {
            var log: [String] = []
            var sawReentrantCall = false
            func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
                if stream.connection.inSession { sawReentrantCall = true }
                if case .end = part {
                    stream.sendHeaders([(":status", "200")])
                    stream.sendData(ByteBuffer(string: "answer \(stream.id)"), endStream: true)
                    _ = stream.connection.ping()
                    log.append("answered \(stream.id)")
                }
            }
            func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {
                if stream.connection.inSession { sawReentrantCall = true }
            }
            func streamWritabilityChanged(_ stream: HTTP2Stream) {}
        }
        let busy = Busy()
        let pair = try InMemoryHTTP2Pair { _ in busy }

        /// A client delegate that opens the next request from inside the previous one's callbacks.
        final class Chain: HTTP2StreamDelegate {
            var remaining: Int
            var bodies: [String] = []
            var sawReentrantCall = false
            init(remaining: Int) { self.remaining = remaining }
            func stream(_ stream: HTTP2Stream, received part: HTTP2StreamPart) {
                if stream.connection.inSession { sawReentrantCall = true }
                if case .data(let data) = part {
                    bodies.append(String(buffer: data))
                    stream.consumed(data.readableBytes)
                }
                if case .end = part, remaining > 0 {
                    remaining -= 1
                    _ = try? stream.connection.openStream(
                        headers: requestHeaders(method: "GET"), endStream: true, delegate: self)
                }
            }
            func streamClosed(_ stream: HTTP2Stream, error: HTTP2Error?) {}
            func streamWritabilityChanged(_ stream: HTTP2Stream) {}
        }
        let chain = Chain(remaining: 9)
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: chain)
        try pair.interact()
        #expect(chain.bodies == (0..<10).map { "answer \(2 * $0 + 1)" })
        #expect(busy.log.count == 10)
        #expect(!busy.sawReentrantCall && !chain.sawReentrantCall)
    }

    @Test("garbage instead of the connection preface: an error and a clean close")
    func garbagePreface() throws {
        let server = EmbeddedChannel()
        let events = EventRecorder()
        try server.pipeline.syncOperations.addHandlers([
            HTTP2ConnectionHandler(
                role: .server, eventLoop: server.eventLoop, streamAcceptor: { _ in RecordingDelegate() }),
            events,
        ])
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try server.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
        server.embeddedEventLoop.run()
        let error = try #require(events.errors.first as? HTTP2Error)
        guard case .protocolViolation = error else {
            Issue.record("expected a protocol violation, got \(error)")
            return
        }
        #expect(!server.isActive)
    }

    @Test("a stream reset while nghttp2 holds its DATA frame for the next write ends that stream only")
    func resetWhileDataFrameWaits() throws {
        let receivers = [RecordingDelegate(), RecordingDelegate()]
        var accepted = 0
        let pair = try InMemoryHTTP2Pair { _ in
            defer { accepted += 1 }
            return receivers[accepted]
        }
        // The next write leaves the channel unwritable, so the send pass that carries A's
        // 60 KiB frame ends with B's frame prepared and refused for now (the write is full).
        let gate = UnwritableAfterNextWrite()
        try pair.client.pipeline.syncOperations.addHandler(gate, position: .first)
        let (first, second) = (RecordingDelegate(), RecordingDelegate())
        let a = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: first)
        let b = try pair.clientConnection.openStream(headers: requestHeaders(), delegate: second)
        a.sendData(ByteBuffer(repeating: 0x61, count: 60 * 1024), endStream: true)
        b.sendData(ByteBuffer(repeating: 0x62, count: 10 * 1024), endStream: true)
        pair.client.embeddedEventLoop.run()
        #expect(gate.fired && !pair.client.isWritable)

        // B's owner gives up while nghttp2 still holds B's frame; then the channel drains.
        b.reset(.cancel)
        pair.client.isWritable = true
        pair.client.pipeline.fireChannelWritabilityChanged()
        try pair.interact()

        #expect(pair.clientEvents.errors.isEmpty, "\(pair.clientEvents.errors)")
        #expect(pair.client.isActive, "the whole connection was torn down")
        #expect(receivers[0].body.readableBytes == 60 * 1024 && receivers[0].ended)
        #expect(receivers[1].closed && !receivers[1].ended)
        #expect(second.closed)
    }

    @Test("goAwayAndClose writes the GOAWAY, with its debug data, even while the channel is unwritable")
    func goAwayAndCloseWhenUnwritable() throws {
        let pair = try InMemoryHTTP2Pair { _ in RecordingDelegate() }
        // A backed-up connection: flushOutput would wait for writability that never comes.
        pair.client.isWritable = false
        pair.clientConnection.goAwayAndClose(debugData: "replaced")
        var sent = ByteBuffer()
        while var bytes = try pair.client.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&bytes) }
        #expect(containsGoAway(sent, code: .noError), "no GOAWAY was written before the close")
        #expect(String(buffer: sent).hasSuffix("replaced"))
        #expect(!pair.client.isActive)
    }

    @Test("a frame larger than SETTINGS_MAX_FRAME_SIZE: GOAWAY(FRAME_SIZE_ERROR), an error, a clean close")
    func oversizedFrame() throws {
        let pair = try InMemoryHTTP2Pair { _ in RecordingDelegate() }
        // A DATA frame header announcing 70,000 bytes on stream 1 (our limit is 65,536).
        var frame = ByteBuffer()
        frame.writeBytes([0x01, 0x11, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01])
        frame.writeRepeatingByte(0, count: 70_000)
        try pair.server.writeInbound(frame)
        pair.server.embeddedEventLoop.run()
        var sent = ByteBuffer()
        while var bytes = try pair.server.readOutbound(as: ByteBuffer.self) { sent.writeBuffer(&bytes) }
        #expect(containsGoAway(sent, code: .frameSizeError), "no GOAWAY(FRAME_SIZE_ERROR) was sent")
        let error = try #require(pair.serverEvents.errors.first as? HTTP2Error)
        guard case .protocolViolation = error else {
            Issue.record("expected a protocol violation, got \(error)")
            return
        }
        #expect("\(error)".contains("FRAME_SIZE_ERROR"), "\(error)")
        #expect(!pair.server.isActive)
    }

    @Test("a header list over the limit resets that stream only")
    func headerListTooLarge() throws {
        var serverConfiguration = HTTP2Configuration()
        serverConfiguration.maxHeaderListSize = 4096
        let pair = try InMemoryHTTP2Pair(serverConfiguration: serverConfiguration) { _ in EchoResponder() }
        var headers = requestHeaders(method: "GET")
        headers.add(name: "x-big", value: String(repeating: "a", count: 8000))
        let big = RecordingDelegate()
        _ = try pair.clientConnection.openStream(headers: headers, endStream: true, delegate: big)
        let small = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: small)
        try pair.interact()
        #expect(big.closed && big.headers == nil)
        #expect(big.error != nil)
        #expect(small.headers?[":status"] == "200" && small.error == nil)
        #expect(pair.client.isActive)
    }

    @Test("when stream ids run out, the request fails and the connection drains and closes")
    func streamIDsRunOut() throws {
        let pair = try InMemoryHTTP2Pair { _ in EchoResponder() }
        pair.clientConnection.setNextStreamID(Int32.max)  // the last odd id
        let last = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: last)
        #expect(throws: HTTP2Error.self) {
            _ = try pair.clientConnection.openStream(
                headers: requestHeaders(method: "GET"), endStream: true, delegate: RecordingDelegate())
        }
        #expect(pair.clientConnection.goAwaySent)
        try pair.interact()
        #expect(last.headers?[":status"] == "200" && last.ended, "the stream in flight finishes")
        #expect(!pair.client.isActive, "the drained connection closes, so its peer reconnects")
    }

    @Test("response HEADERS too large to send reset the stream instead of leaving the peer waiting")
    func responseHeadersTooLargeToSend() throws {
        let serverStreams = ServerStreams()
        let serverDelegate = serverStreams.delegate
        let pair = try InMemoryHTTP2Pair(acceptor: serverStreams.accept)
        let client = RecordingDelegate()
        _ = try pair.clientConnection.openStream(
            headers: requestHeaders(method: "GET"), endStream: true, delegate: client)
        try pair.interact()
        // Past the 64 KiB header block nghttp2 is allowed to send (max_send_header_block_length).
        let server = try #require(serverStreams.last)
        server.sendHeaders([(":status", "200"), ("x-huge", String(repeating: "h", count: 70_000))])
        server.sendData(ByteBuffer(string: "body"), endStream: true)
        try pair.interact()

        #expect(client.closed && client.headers == nil)
        #expect(client.error == .streamReset(streamID: 1, code: .internalError), "\(String(describing: client.error))")
        #expect(serverDelegate.closed)
        #expect(serverDelegate.error?.description.contains("its HEADERS could not be sent") == true)
        #expect(pair.client.isActive && pair.server.isActive)
    }

    /// Scans raw frames for a GOAWAY carrying `code`.
    private func containsGoAway(_ bytes: ByteBuffer, code: HTTP2ErrorCode) -> Bool {
        var buffer = bytes
        while buffer.readableBytes >= 9 {
            let length =
                Int(buffer.getInteger(at: buffer.readerIndex, as: UInt8.self)!) << 16
                | Int(buffer.getInteger(at: buffer.readerIndex + 1, as: UInt16.self)!)
            let type = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt8.self)!
            if type == 0x7, let errorCode = buffer.getInteger(at: buffer.readerIndex + 13, as: UInt32.self) {
                if errorCode == code.rawValue { return true }
            }
            guard buffer.readableBytes >= 9 + length else { return false }
            buffer.moveReaderIndex(forwardBy: 9 + length)
        }
        return false
    }
}

/// Makes an EmbeddedChannel unwritable when the first write after it was armed passes.
private final class UnwritableAfterNextWrite: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private(set) var fired = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if !fired, let channel = context.channel as? EmbeddedChannel {
            fired = true
            channel.isWritable = false
        }
        context.write(data, promise: promise)
    }
}
