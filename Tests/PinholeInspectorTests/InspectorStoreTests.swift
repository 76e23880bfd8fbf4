import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import Testing

@testable import PinholeInspector

/// Capture and the ring, without sockets: exchanges driven by hand through the
/// capturing target, against a target that answers at once.
@Suite("Inspector capture and ring")
struct InspectorStoreTests {
    /// A target whose upstream records what it was sent and answers when told.
    final class ScriptedTarget: ExchangeTarget, @unchecked Sendable {
        // Unchecked: the tests use it from one thread only.
        var upstreams: [ScriptedUpstream] = []
        func startExchange(
            _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
        ) throws(ExchangeError) -> any ExchangeUpstream {
            let upstream = ScriptedUpstream(downstream: downstream)
            upstreams.append(upstream)
            return upstream
        }
    }

    final class ScriptedUpstream: ExchangeUpstream {
        var downstream: (any ExchangeDownstream)?
        var received = ByteBuffer()
        var ended = false
        var writable = true
        init(downstream: any ExchangeDownstream) { self.downstream = downstream }
        var canTakeRequestBody: Bool { writable }
        func sendBody(_ body: ByteBuffer) { received.writeImmutableBuffer(body) }
        func sendEnd(trailers: HTTPHeaders?) { ended = true }
        func cancel() {}
        func downstreamWritabilityChanged() {}

        func answer(_ body: ByteBuffer, trailers: HTTPHeaders? = nil) {
            downstream?.exchangeReceivedHead(ProxyResponseHead(status: .ok))
            downstream?.exchangeReceivedBody(body)
            downstream?.exchangeReceivedEnd(trailers: trailers)
        }
    }

    final class SinkDownstream: ExchangeDownstream {
        var body = ByteBuffer()
        var ended = false
        var writable = true
        var canTakeResponseBody: Bool { writable }
        func exchangeReceivedHead(_ head: ProxyResponseHead) {}
        func exchangeReceivedBody(_ body: ByteBuffer) { self.body.writeImmutableBuffer(body) }
        func exchangeReceivedEnd(trailers: HTTPHeaders?) { ended = true }
        func exchangeFailed(_ error: ExchangeError) {}
        func exchangeUpstreamWritabilityChanged() {}
    }

    static func head(_ path: String) -> ProxyRequestHead {
        ProxyRequestHead(method: .POST, path: path, authority: "app", scheme: "http", headers: HTTPHeaders())
    }

    @Test("bodies pass through whole while only the first bytes up to the limit are kept, the rest counted")
    func bodyLimit() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector(limits: .init(bodyBytes: 100))
        let scripted = ScriptedTarget()
        let target = inspector.capture(scripted)
        let sink = SinkDownstream()
        let upstream = try target.startExchange(Self.head("/big"), downstream: sink, on: loop)
        for _ in 0..<10 { upstream.sendBody(ByteBuffer(repeating: 0x61, count: 30)) }
        upstream.sendEnd(trailers: nil)
        scripted.upstreams[0].answer(ByteBuffer(repeating: 0x62, count: 1000), trailers: ["grpc-status": "0"])

        #expect(scripted.upstreams[0].received.readableBytes == 300, "the target got the whole body")
        #expect(sink.body.readableBytes == 1000 && sink.ended, "the client got the whole response")
        let record = try #require(inspector.store.all().first)
        #expect(record.requestBody.totalBytes == 300 && record.requestBody.kept.readableBytes == 100)
        #expect(record.responseBody.totalBytes == 1000 && record.responseBody.kept.readableBytes == 100)
        #expect(record.requestBody.isTruncated && record.responseBody.isTruncated)
        #expect(record.state == .complete && record.status == 200)
        #expect(record.responseTrailers?.first(name: "grpc-status") == "0")
    }

    /// A body's first piece is kept as a view of its buffer while the exchange runs. An
    /// app connection reads into the same buffer again only if no one else holds it: once
    /// the record is in the ring, neither the exchange nor its slot may. A buffer held
    /// elsewhere is copied on its next write, which moves its bytes.
    @Test("a finished exchange lets go of the buffers its bodies came in")
    func bodiesLetGo() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector()
        let scripted = ScriptedTarget()
        let upstream = try inspector.capture(scripted).startExchange(
            Self.head("/held"), downstream: SinkDownstream(), on: loop)
        var request = ByteBuffer(string: "request body")
        var response = ByteBuffer(string: "response body")
        let requestBytes = request.withUnsafeReadableBytes { $0.baseAddress }
        let responseBytes = response.withUnsafeReadableBytes { $0.baseAddress }
        upstream.sendBody(request)
        upstream.sendEnd(trailers: nil)
        let capture = try #require(upstream as? CapturingExchange)
        #expect(inspector.store.record(capture.id)?.state == .pending)
        scripted.upstreams[0].answer(response)

        // A write to a buffer someone else holds copies it first (copy on write).
        let requestNow = request.withUnsafeMutableReadableBytes { UnsafeRawPointer($0.baseAddress) }
        let responseNow = response.withUnsafeMutableReadableBytes { UnsafeRawPointer($0.baseAddress) }
        #expect(requestNow == requestBytes, "the request's buffer is still held")
        #expect(responseNow == responseBytes, "the response's buffer is still held")
        let record = try #require(inspector.store.record(capture.id))
        #expect(String(buffer: record.requestBody.kept) == "request body")
        #expect(String(buffer: record.responseBody.kept) == "response body" && record.state == .complete)
    }

    @Test("backpressure passes through: each side hears the other end's writability, not its own")
    func writability() throws {
        let loop = EmbeddedEventLoop()
        let scripted = ScriptedTarget()
        let sink = SinkDownstream()
        let upstream = try Inspector().capture(scripted).startExchange(Self.head("/"), downstream: sink, on: loop)
        let target = scripted.upstreams[0]
        sink.writable = false
        #expect(target.downstream?.canTakeResponseBody == false, "the target would read on while the client does not")
        #expect(upstream.canTakeRequestBody == true)
        sink.writable = true
        target.writable = false
        #expect(target.downstream?.canTakeResponseBody == true)
        #expect(
            upstream.canTakeRequestBody == false, "the client's side would send on while the target does not take it")
    }

    @Test("the ring keeps its byte bound, dropping the oldest records first")
    func ringBound() throws {
        let loop = EmbeddedEventLoop()
        let limit = 64 * 1024
        let inspector = Inspector(limits: .init(bodyBytes: 4096, totalBytes: limit))
        let scripted = ScriptedTarget()
        let target = inspector.capture(scripted)
        for index in 0..<200 {
            let upstream = try target.startExchange(Self.head("/\(index)"), downstream: SinkDownstream(), on: loop)
            upstream.sendBody(ByteBuffer(repeating: 0x61, count: 4096))
            upstream.sendEnd(trailers: nil)
            scripted.upstreams[index].answer(ByteBuffer(repeating: 0x62, count: 2048))
            #expect(inspector.store.retainedBytes <= limit)
        }
        let kept = inspector.store.all()
        #expect(kept.count > 5 && kept.count < 200)
        #expect(kept.last?.path == "/199")
        #expect(kept.map(\.id) == Array((201 - kept.count)...200), "the newest are kept, in order")
        #expect(inspector.store.record(1) == nil)
    }

    @Test("records taken at once come in the order asked, in flight or finished, with or without bodies; nil for gone")
    func recordsAtOnce() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector(limits: .init(bodyBytes: 4096, totalBytes: 16 * 1024))
        let scripted = ScriptedTarget()
        let target = inspector.capture(scripted)
        for index in 0..<40 {
            let upstream = try target.startExchange(Self.head("/\(index)"), downstream: SinkDownstream(), on: loop)
            upstream.sendEnd(trailers: nil)
            // The last one stays in flight.
            if index < 39 { scripted.upstreams[index].answer(ByteBuffer(repeating: 0x62, count: 1000)) }
        }
        let ids = [40, 1, 38, 999, 39]
        let whole = inspector.store.records(ids)
        #expect(whole.map { $0?.path } == ["/39", nil, "/37", nil, "/38"])
        #expect(whole[0]?.state == .pending && whole[2]?.state == .complete)
        #expect(whole[2]?.responseBody.kept.readableBytes == 1000)
        let summaries = inspector.store.records(ids, .withoutBodies)
        #expect(summaries.map { $0?.id } == [40, nil, 38, nil, 39])
        #expect(summaries[2]?.responseBody.kept.readableBytes == 0 && summaries[2]?.responseBody.totalBytes == 1000)
    }

    /// A small record is written into the ring in place, under the store's lock; a larger
    /// one is encoded into an array first. Both must come back as written, also when they
    /// land at the ring's end and start again at its beginning.
    @Test("small records written in place and large ones copied in come back whole, round and round the ring")
    func inPlaceAndCopied() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector(limits: .init(bodyBytes: 8192, totalBytes: 16 * 1024))
        let scripted = ScriptedTarget()
        let target = inspector.capture(scripted)
        for index in 0..<60 {
            let size = index.isMultiple(of: 3) ? InspectorStore.largestWrittenUnderLock + 900 : 40 + index
            let fill = UInt8(ascii: "a") + UInt8(index % 26)
            let upstream = try target.startExchange(Self.head("/\(index)"), downstream: SinkDownstream(), on: loop)
            upstream.sendBody(ByteBuffer(repeating: fill, count: size))
            upstream.sendEnd(trailers: nil)
            scripted.upstreams[index].answer(ByteBuffer(repeating: fill &+ 1, count: size / 2))

            let record = try #require(inspector.store.record(index + 1), "record \(index + 1) is gone at once")
            #expect(record.path == "/\(index)" && record.state == .complete)
            #expect(record.requestBody.kept == ByteBuffer(repeating: fill, count: size))
            #expect(record.responseBody.kept == ByteBuffer(repeating: fill &+ 1, count: size / 2))
            #expect(inspector.store.retainedBytes <= 16 * 1024)
        }
        let kept = inspector.store.all()
        #expect(kept.count > 2 && kept.count < 60)
        #expect(kept.map(\.id) == Array((61 - kept.count)...60), "the newest are kept, in order")
    }

    /// Threads finish records at once, most written into the ring in place under the
    /// store's lock, every tenth (over 4 KiB) encoded outside it first; each thread also
    /// reads, as the page does. Every record must come back whole.
    @Test("exchanges on several threads at once are each kept whole, in flight and finished")
    func threadsAtOnce() throws {
        let inspector = Inspector()
        let threads = 4
        let each = 300
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            let loop = EmbeddedEventLoop()
            let scripted = ScriptedTarget()
            let target = inspector.capture(scripted)
            for index in 0..<each {
                let path = "/\(thread)/\(index)"
                guard let upstream = try? target.startExchange(Self.head(path), downstream: SinkDownstream(), on: loop)
                else { return }
                upstream.sendBody(ByteBuffer(string: Self.body(of: path, index: index)))
                upstream.sendEnd(trailers: nil)
                // Read in flight, as the page does, while other threads finish theirs.
                let live = (upstream as? CapturingExchange).flatMap { inspector.store.record($0.id) }
                #expect(live?.path == path && live?.state == .pending)
                scripted.upstreams[index].answer(ByteBuffer(string: "answer to " + path))
                let newest = inspector.store.newest(3, .withoutBodies)
                #expect(!newest.isEmpty && newest.count <= 3 && newest.allSatisfy { $0.path.hasPrefix("/") })
            }
        }
        let kept = inspector.store.all()
        #expect(kept.count == threads * each)
        #expect(Set(kept.map(\.id)).count == kept.count, "every request has an id of its own")
        for record in kept {
            #expect(record.state == .complete)
            let index = Int(record.path.split(separator: "/").last ?? "") ?? -1
            #expect(String(buffer: record.requestBody.kept) == Self.body(of: record.path, index: index))
            #expect(String(buffer: record.responseBody.kept) == "answer to " + record.path)
        }
    }

    /// The request body of `threadsAtOnce`'s exchange `index`: every tenth is larger than
    /// what the store writes in place.
    static func body(of path: String, index: Int) -> String {
        index.isMultiple(of: 10) ? String(repeating: path, count: InspectorStore.largestWrittenUnderLock / 4) : path
    }

    /// An app may answer before it reads the body (an early 413): the body's end comes
    /// after the record went into the ring.
    @Test("a request body that ends after its response changes nothing, and tells the page nothing")
    func bodyEndsAfterResponse() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector()
        let heard = NIOLockedValueBox(0)
        let token = inspector.store.observe { _ in heard.withLockedValue { $0 += 1 } }
        defer { inspector.store.stopObserving(token) }
        let scripted = ScriptedTarget()
        let upstream = try inspector.capture(scripted).startExchange(
            Self.head("/early"), downstream: SinkDownstream(), on: loop)
        upstream.sendBody(ByteBuffer(string: "first"))
        scripted.upstreams[0].answer(ByteBuffer(string: "too large"))
        let afterAnswer = heard.withLockedValue { $0 }
        var late = ByteBuffer(string: "second")
        let lateBytes = late.withUnsafeReadableBytes { $0.baseAddress }
        upstream.sendBody(late)
        upstream.sendEnd(trailers: ["x-late": "1"])
        #expect(heard.withLockedValue { $0 } == afterAnswer, "no change after the record was finished")
        // Nothing keeps the late body either (see `bodiesLetGo`).
        let lateNow = late.withUnsafeMutableReadableBytes { UnsafeRawPointer($0.baseAddress) }
        #expect(lateNow == lateBytes, "the late body's buffer is still held")
        let record = try #require(inspector.store.all().first)
        #expect(record.state == .complete && record.requestTrailers == nil)
        #expect(String(buffer: record.requestBody.kept) == "first")
    }

    @Test("caller deadlines come from x-envoy-expected-rq-timeout-ms or grpc-timeout")
    func deadlines() {
        #expect(CallerDeadline(headers: ["x-envoy-expected-rq-timeout-ms": "15000"])?.timeout == .seconds(15))
        #expect(CallerDeadline(headers: ["grpc-timeout": "250m"])?.timeout == .milliseconds(250))
        #expect(CallerDeadline(headers: ["grpc-timeout": "2S"])?.source == "grpc-timeout")
        #expect(CallerDeadline(headers: ["grpc-timeout": "123456789S"]) == nil, "more than 8 digits")
        #expect(CallerDeadline(headers: ["x-envoy-expected-rq-timeout-ms": "soon"]) == nil)
        #expect(CallerDeadline(headers: [:]) == nil)
        // Names in any case; Envoy's wins; an unreadable Envoy value leaves gRPC's.
        #expect(CallerDeadline(headers: ["X-Envoy-Expected-Rq-Timeout-Ms": "40"])?.timeout == .milliseconds(40))
        #expect(CallerDeadline(headers: ["GRPC-Timeout": "3S"])?.timeout == .seconds(3))
        let both: HTTPHeaders = ["grpc-timeout": "1S", "x-envoy-expected-rq-timeout-ms": "500"]
        #expect(CallerDeadline(headers: both)?.source == "x-envoy-expected-rq-timeout-ms")
        let unreadable: HTTPHeaders = ["x-envoy-expected-rq-timeout-ms": "0", "grpc-timeout": "7m"]
        #expect(CallerDeadline(headers: unreadable)?.timeout == .milliseconds(7))
        #expect(CallerDeadline(headers: ["grpc-timeout": "5m", "grpc-timeout": "9m"])?.timeout == .milliseconds(5))
        #expect(CallerDeadline(headers: ["x-envoy-expected-rq-timeout-mz": "40", "grpc-timeoux": "1S"]) == nil)
    }

    @Test("the feed's hand-written summary is the same JSON object as the encoded one")
    func summaryJSON() throws {
        let loop = EmbeddedEventLoop()
        let inspector = Inspector()
        let scripted = ScriptedTarget()
        var head = Self.head("/quote\"d\\path\u{1}?q=é")
        head.headers.add(name: "x-envoy-expected-rq-timeout-ms", value: "1500")
        let upstream = try inspector.capture(scripted).startExchange(head, downstream: SinkDownstream(), on: loop)
        upstream.sendEnd(trailers: nil)
        scripted.upstreams[0].answer(ByteBuffer(string: "ok"))
        let record = try #require(inspector.store.all().first)
        let summary = InspectorJSON.summary(record)
        let encoded = try InspectorJSON.encoder().encode(summary)
        let expected = try #require(try JSONSerialization.jsonObject(with: encoded) as? NSDictionary)
        let written = try #require(try JSONSerialization.jsonObject(with: Data(summary.json.utf8)) as? NSDictionary)
        #expect(written == expected)
        #expect(written["path"] as? String == "/quote\"d\\path\u{1}?q=é")
    }

    @Test("curl commands quote what the shell would expand")
    func curlQuoting() {
        #expect(Curl.quote("it's $HOME") == #"'it'\''s $HOME'"#)
    }
}

/// The ring's compact form of a record: every field comes back as it went in.
@Suite("Inspector record encoding")
struct InspectorRecordEncodingTests {
    @Test("a record read back from its bytes has every field it was written with")
    func roundTrip() throws {
        let started = NIODeadline.uptimeNanoseconds(5_000_000_000)
        var head = ProxyRequestHead(
            method: .PUT, path: "/ünïcode?q=1", authority: "app.example:8080", scheme: "https",
            headers: ["content-type": "application/grpc", "x-forwarded-for": "10.0.0.1, 192.0.2.7"],
            mayHaveBody: false, upgrade: "websocket", clientProtocol: .http2)
        head.headers.add(name: "grpc-timeout", value: "250m")
        var record = CapturedRequest(
            id: 42, head: head, replayOf: 7, wallClock: 1_700_000_000.25, started: started,
            deadline: CallerDeadline(headers: head.headers))
        record.requestBody.keep(ByteBuffer(string: "request body"), limit: 4)
        record.requestTrailers = ["x-checksum": "abc"]
        record.status = 504
        record.responseHeaders = ["content-length": "3", "date": "Mon, 07 Dec 2026 06:00:00 GMT"]
        record.responseBody.keep(ByteBuffer(bytes: [0, 1, 2]), limit: 100)
        record.state = .failed
        record.error = "the app cut the response"
        record.timing.delivered = started + .milliseconds(1)
        record.timing.responseStarted = started + .milliseconds(3)
        record.timing.finished = started + .milliseconds(9)
        record.deadlinePassed = true

        var bytes = ByteBuffer(bytes: record.encoded())
        let read = try #require(CapturedRequest.decode(from: &bytes))
        #expect(bytes.readableBytes == 0)
        #expect(read.id == 42 && read.replayOf == 7 && read.wallClock == 1_700_000_000.25)
        #expect(read.head == record.head)
        #expect(read.requestBody.kept == ByteBuffer(string: "requ") && read.requestBody.totalBytes == 12)
        #expect(read.requestTrailers == record.requestTrailers && read.responseTrailers == nil)
        #expect(read.status == 504 && read.responseHeaders == record.responseHeaders)
        #expect(read.responseBody.kept == ByteBuffer(bytes: [0, 1, 2]) && read.responseBody.totalBytes == 3)
        #expect(read.state == .failed && read.error == "the app cut the response" && read.deadlinePassed)
        #expect(read.deadline == CallerDeadline(timeout: .milliseconds(250), source: "grpc-timeout"))
        #expect(read.timing.started == started && read.timing.delivered == started + .milliseconds(1))
        #expect(read.timing.requestEnded == nil && read.timing.responseStarted == started + .milliseconds(3))
        #expect(read.timing.finished == started + .milliseconds(9))
    }

    /// The list and the live feed read records without their bodies' bytes.
    @Test("a record copied without its bodies keeps every other field, and its bodies' sizes")
    func withoutBodies() throws {
        var record = CapturedRequest(
            id: 9, head: InspectorStoreTests.head("/big"), replayOf: 3, wallClock: 1_700_000_000,
            started: .uptimeNanoseconds(1_000), deadline: nil)
        record.requestBody.keep(ByteBuffer(repeating: 0x61, count: 3000), limit: 1000)
        record.status = 200
        record.responseHeaders = ["grpc-status": "5"]
        record.responseBody.keep(ByteBuffer(repeating: 0x62, count: 700), limit: 1000)
        record.responseTrailers = ["grpc-message": "not found"]
        record.state = .complete
        var ring = RecordRing(capacity: 1 << 16)
        let appended = ring.append(record.encoded())
        let position = try #require(appended)
        #expect(ring.integer(at: position, offset: CapturedRequest.replayOfOffset, as: Int64.self) == 3)

        var copied = ByteBuffer()
        #expect(CapturedRequest.copyWithoutBodies(of: ring, at: position, into: &copied))
        #expect(copied.readableBytes < 1000, "the kept bytes stayed in the ring")
        let summary = try #require(CapturedRequest.decode(from: &copied))
        #expect(copied.readableBytes == 0, "the length at its start is the copy's own")
        #expect(summary.requestBody.totalBytes == 3000 && summary.requestBody.kept.readableBytes == 0)
        #expect(summary.responseBody.totalBytes == 700 && summary.responseBody.kept.readableBytes == 0)
        #expect(summary.id == 9 && summary.replayOf == 3 && summary.path == "/big" && summary.status == 200)
        #expect(summary.responseHeaders == record.responseHeaders)
        #expect(summary.responseTrailers == record.responseTrailers && summary.state == .complete)

        var whole = ByteBuffer()
        #expect(ring.copy(at: position, into: &whole))
        let full = try #require(CapturedRequest.decode(from: &whole))
        #expect(full.requestBody.kept.readableBytes == 1000 && full.responseBody.kept.readableBytes == 700)
    }
}
