import NIOCore
import NIOHTTP1
import PinholeCore
import Testing

@testable import PinholeTunnel

/// Records what an upstream or downstream was told, in order.
private final class Recorder: ExchangeUpstream, ExchangeDownstream {
    var log: [String] = []
    var writable = true

    var canTakeRequestBody: Bool { writable }
    var canTakeResponseBody: Bool { writable }
    func sendBody(_ body: ByteBuffer) { log.append("body \(body.readableBytes)") }
    func sendEnd(trailers: HTTPHeaders?) { log.append("end \(trailers?.count ?? 0)") }
    func cancel() { log.append("cancel") }
    func downstreamWritabilityChanged() { log.append("downstream writability") }
    func exchangeReceivedHead(_ head: ProxyResponseHead) { log.append("head") }
    func exchangeReceivedBody(_ body: ByteBuffer) { log.append("response body") }
    func exchangeReceivedEnd(trailers: HTTPHeaders?) { log.append("response end") }
    func exchangeFailed(_ error: ExchangeError) { log.append("failed \(error.status.code)") }
    func exchangeUpstreamWritabilityChanged() { log.append("upstream writable") }
}

@Suite("An upstream that waits for the app connection")
struct DeferredUpstreamTests {
    private let head = ProxyRequestHead(method: .POST, path: "/", authority: "a", scheme: "http", headers: [:])

    @Test("body held before the connection goes on in order, with the end; a full hold resumes the downstream")
    func holdsThenHandsOver() {
        let downstream = Recorder()
        let deferred = DeferredUpstream(head: head, downstream: downstream)
        deferred.sendBody(ByteBuffer(repeating: 1, count: DeferredUpstream.pendingLimit))
        #expect(!deferred.canTakeRequestBody)
        deferred.sendEnd(trailers: ["grpc-x": "1"])
        let real = Recorder()
        deferred.attach(real)
        #expect(real.log == ["body \(DeferredUpstream.pendingLimit)", "end 1"])
        #expect(downstream.log == ["upstream writable"])
        deferred.sendBody(ByteBuffer(repeating: 2, count: 3))
        #expect(real.log.last == "body 3")
    }

    @Test("cancelled before the connection: nothing reaches the app, and the real upstream is cancelled")
    func cancelledFirst() {
        let downstream = Recorder()
        let deferred = DeferredUpstream(head: head, downstream: downstream)
        deferred.sendBody(ByteBuffer(repeating: 1, count: 10))
        deferred.cancel()
        let real = Recorder()
        deferred.attach(real)
        #expect(real.log == ["cancel"])
        deferred.fail(.targetUnreachable(target: "t", reason: "r"))
        #expect(downstream.log.isEmpty)
    }

    @Test("a failed connection fails the downstream once")
    func fails() {
        let downstream = Recorder()
        let deferred = DeferredUpstream(head: head, downstream: downstream)
        deferred.fail(.targetUnreachable(target: "t", reason: "r"))
        deferred.fail(.targetUnreachable(target: "t", reason: "r"))
        #expect(downstream.log == ["failed 502"])
    }
}
