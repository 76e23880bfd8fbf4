import Testing

@testable import PinholeHTTP2

/// One stream's state, one transition at a time, without nghttp2 or a channel.
@Suite("HTTP/2 stream state machine")
struct HTTP2StreamStateMachineTests {
    typealias Machine = HTTP2StreamStateMachine

    @Test("a body streams as it is queued: deferred while empty, resumed when more comes, EOF with the last")
    func bodyStreams() {
        var answer: Bool
        var stream = Machine()
        #expect(stream.mayStartSending && stream.mayQueue)
        stream.headersSubmitted(endStream: false)
        #expect(stream.send == .streaming)
        #expect(!stream.mayStartSending, "HEADERS go once")

        #expect(stream.provideData(maximum: 16_384, queued: 0) == .deferUntilResumed)
        #expect(stream.send == .deferred)
        answer = stream.resumeRequested()
        #expect(answer)
        #expect(stream.send == .streaming)
        answer = stream.resumeRequested()
        #expect(!answer, "one resume per deferral")

        #expect(stream.provideData(maximum: 10, queued: 25) == .data(10))
        stream.dataQueued(end: true, outgoingBytes: 15, highWatermark: 100)
        #expect(stream.localEnd == .queued)
        #expect(!stream.mayQueue, "nothing after the end")
        #expect(stream.provideData(maximum: 10, queued: 15) == .data(10), "the end waits for the last byte")
        #expect(stream.provideData(maximum: 10, queued: 5) == .last(5))
        #expect(stream.send == .finished)
        answer = stream.resumeRequested()
        #expect(!answer)
    }

    @Test("an end queued before the data provider first asks: EOF on the first frame, or an empty one")
    func endBeforeFirstFrame() {
        var stream = Machine()
        stream.dataQueued(end: true, outgoingBytes: 0, highWatermark: 100)
        stream.headersSubmitted(endStream: false)
        #expect(stream.provideData(maximum: 16_384, queued: 0) == .last(0))
    }

    @Test("HEADERS with END_STREAM finish the sending side")
    func headersOnly() {
        var stream = Machine()
        stream.headersSubmitted(endStream: true)
        #expect(stream.send == .finished)
        #expect(stream.localEnd == .queued)
        #expect(!stream.mayQueue)
    }

    @Test("trailers end the stream after the data, and are taken once")
    func trailers() {
        var answer: Bool
        var stream = Machine()
        stream.headersSubmitted(endStream: false)
        stream.dataQueued(end: false, outgoingBytes: 3, highWatermark: 100)
        answer = stream.trailersQueued([("grpc-status", "0")])
        #expect(answer)
        answer = stream.trailersQueued([("x", "y")])
        #expect(!answer, "the end is already queued")
        #expect(stream.provideData(maximum: 100, queued: 3) == .lastBeforeTrailers(3))
        #expect(stream.takeTrailers() == [("grpc-status", "0")])
        #expect(stream.takeTrailers() == nil)
    }

    @Test("a stream reset while its DATA waits: nothing more is resumed, queued or submitted")
    func resetWhileDataWaits() {
        var answer: Bool
        var stream = Machine()
        stream.headersSubmitted(endStream: false)
        stream.dataQueued(end: false, outgoingBytes: 10_240, highWatermark: 100)
        #expect(stream.provideData(maximum: 16_384, queued: 0) == .deferUntilResumed)
        answer = stream.trailersQueued([("x", "y")])
        #expect(answer)
        stream.closed()
        #expect(stream.isClosed)
        answer = stream.resumeRequested()
        #expect(!answer)
        #expect(stream.takeTrailers() == nil)
        #expect(!stream.mayQueue && !stream.mayStartSending)
    }

    @Test("a reset after queued: the queue drains first, then the provider asks for the reset; nothing more queues")
    func resetAfterQueued() {
        var stream = Machine()
        #expect(stream.resetAfterQueuedRequested(.cancel) == .resetNow, "no HEADERS submitted: nothing to wait for")
        stream.headersSubmitted(endStream: false)
        stream.dataQueued(end: false, outgoingBytes: 5, highWatermark: 100)
        #expect(stream.resetAfterQueuedRequested(.cancel) == .waitForProvider)
        #expect(!stream.mayQueue)
        #expect(stream.resetAfterQueuedRequested(.internalError) == .resetNow, "the end is decided already")
        #expect(stream.provideData(maximum: 3, queued: 5) == .data(3))
        #expect(stream.provideData(maximum: 3, queued: 2) == .data(2))
        #expect(stream.provideData(maximum: 3, queued: 0) == .reset(.cancel))

        var waiting = Machine()
        waiting.headersSubmitted(endStream: false)
        #expect(waiting.provideData(maximum: 100, queued: 0) == .deferUntilResumed)
        #expect(waiting.resetAfterQueuedRequested(.internalError) == .resume)
        let resumed = waiting.resumeRequested()
        #expect(resumed)
        #expect(waiting.provideData(maximum: 100, queued: 0) == .reset(.internalError))

        var closed = Machine()
        closed.headersSubmitted(endStream: false)
        closed.closed()
        #expect(closed.resetAfterQueuedRequested(.cancel) == .none)
    }

    @Test("a peer whose rest is unwanted is stopped once this side's end is out, unless it ended or the stream closed")
    func peerStoppedAfterTheEnd() {
        var answering = Machine()
        _ = answering.headersReceived(informational: false, endStream: false)
        #expect(!answering.stopsPeer, "wanted by default: nothing follows the end")
        answering.peerRestUnwanted()
        #expect(answering.stopsPeer, "the request is still coming: stop it")

        var ended = Machine()
        _ = ended.headersReceived(informational: false, endStream: false)
        ended.peerRestUnwanted()
        _ = ended.endReceived()
        #expect(!ended.stopsPeer, "the request ended meanwhile: nothing to stop")

        var closed = Machine()
        closed.peerRestUnwanted()
        closed.closed()
        #expect(!closed.stopsPeer, "a closed stream is reset by no one")
    }

    @Test("writability: unwritable at the high watermark, reported writable once below the low one")
    func writability() {
        var answer: Bool
        var stream = Machine()
        stream.dataQueued(end: false, outgoingBytes: 50, highWatermark: 100)
        #expect(stream.writability == .writable)
        answer = stream.dataTaken(outgoingBytes: 10, lowWatermark: 20)
        #expect(!answer, "never unwritable: nothing to report")
        stream.dataQueued(end: false, outgoingBytes: 100, highWatermark: 100)
        #expect(stream.writability == .unwritable)
        answer = stream.dataTaken(outgoingBytes: 21, lowWatermark: 20)
        #expect(!answer)
        answer = stream.dataTaken(outgoingBytes: 20, lowWatermark: 20)
        #expect(answer)
        #expect(stream.writability == .writable)
        answer = stream.dataTaken(outgoingBytes: 0, lowWatermark: 20)
        #expect(!answer)
    }

    @Test("receiving: 1xx skipped, headers then trailers, the end delivered once")
    func receiving() {
        var answer: Bool
        var stream = Machine()
        #expect(stream.headersReceived(informational: true, endStream: false) == .informational)
        #expect(stream.receive == .awaitingHeaders)
        #expect(stream.headersReceived(informational: false, endStream: false) == .headers)
        #expect(!stream.headersEndedStream)
        #expect(
            stream.headersReceived(informational: true, endStream: true) == .trailers, "only the first block can be 1xx"
        )
        answer = stream.endReceived()
        #expect(answer)
        answer = stream.endReceived()
        #expect(!answer)
        #expect(stream.receive == .ended(headersEndedStream: false))
    }

    @Test("HEADERS that end the stream say so, even after the end was recorded and the stream closed")
    func headersEndedStream() {
        var answer: Bool
        var stream = Machine()
        #expect(stream.headersReceived(informational: false, endStream: true) == .headers)
        #expect(stream.headersEndedStream)
        answer = stream.endReceived()
        #expect(answer)
        stream.closed()
        #expect(stream.headersEndedStream)
    }
}
