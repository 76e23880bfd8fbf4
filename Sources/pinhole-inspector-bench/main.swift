// The inspector's own work per exchange, apart from everything else the agent does:
// one thread drives exchanges through a target that answers at once (no sockets, no
// event loop running), with the inspector's capture in front of it and without,
// in alternating rounds, and prints the difference per exchange.
//
// bench/inspector.sh measures what users pay (the whole agent's CPU per request, on
// and off, over real connections); its rounds spread by a few points, so a change
// worth a fraction of the inspector's cost does not show there. This does, to a few
// percent: use it to compare builds of the capture, then confirm with the real bench.
//
//   swift build -c release --product pinhole-inspector-bench
//   .build/release/pinhole-inspector-bench [EXCHANGES_PER_ROUND [RING_MIB]]
import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import PinholeInspector

/// The app's side: answers every request with the same small response as soon as the
/// request has ended, as a connection to a quick app would.
struct AnsweringTarget: ExchangeTarget {
    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        Upstream(downstream)
    }

    final class Upstream: ExchangeUpstream {
        private var downstream: (any ExchangeDownstream)?
        init(_ downstream: any ExchangeDownstream) { self.downstream = downstream }

        var canTakeRequestBody: Bool { true }
        func sendBody(_ body: ByteBuffer) {}
        /// The response, in three calls as a connection gives it.
        func sendEnd(trailers: HTTPHeaders?) {
            guard let downstream else { return }
            self.downstream = nil
            downstream.exchangeReceivedHead(response)
            downstream.exchangeReceivedBody(body)
            downstream.exchangeReceivedEnd(trailers: nil)
        }
        func cancel() { downstream = nil }
        func downstreamWritabilityChanged() {}
    }
}

/// The public side: takes the response and drops it.
final class DroppingDownstream: ExchangeDownstream {
    var canTakeResponseBody: Bool { true }
    func exchangeReceivedHead(_ head: consuming ProxyResponseHead) {}
    func exchangeReceivedBody(_ body: ByteBuffer) {}
    func exchangeReceivedEnd(trailers: HTTPHeaders?) {}
    func exchangeFailed(_ error: ExchangeError) {}
    func exchangeUpstreamWritabilityChanged() {}
}

// What bench/inspector.sh sends through the embedded relay (wrk's GET, with the fields
// the relay adds), and what nginx answers there, with the tunnel's mark.
let request = ProxyRequestHead(
    method: .GET, path: "/hello", authority: "127.0.0.1:18092", scheme: "http",
    headers: ["x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "http", "x-forwarded-host": "127.0.0.1:18092"],
    mayHaveBody: false)
let response = ProxyResponseHead(
    status: .ok,
    headers: [
        "server": "nginx/1.22.1", "date": "Mon, 07 Dec 2026 22:00:00 GMT", "content-type": "text/plain",
        "content-length": "13", "x-pinhole-tunnel": "bench",
    ])
let body = ByteBuffer(string: "Hello, world!")
let loop = EmbeddedEventLoop()

/// Nanoseconds per exchange through `target`, over `count` exchanges.
func nanosecondsPerExchange(_ target: any ExchangeTarget, _ count: Int) -> Double {
    let downstream = DroppingDownstream()
    let start = DispatchTime.now().uptimeNanoseconds
    for _ in 0..<count {
        let upstream = try! target.startExchange(request, downstream: downstream, on: loop)
        upstream.sendEnd(trailers: nil)
    }
    return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(count)
}

let count = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 300_000
let app = AnsweringTarget()
// The ring's size in MiB (64, the default, unless given). Runs of one build with the
// default ring differ by up to a half from one process to the next, with its memory
// placed differently (huge pages or not); a ring of a few MiB, in the cache, compares
// builds' code steadily, without the cost of writing to memory.
let ringMiB = CommandLine.arguments.dropFirst(2).first.flatMap { Int($0) } ?? 64
let inspector = Inspector(limits: .init(totalBytes: ringMiB << 20))
let captured = inspector.capture(app)
// The ring full first (64 MiB hold about 150,000 of these records), as in a long
// session: each record then takes the place of the oldest.
_ = nanosecondsPerExchange(captured, max(200_000, ringMiB * 4_000))
var costs: [Double] = []
for round in 1...8 {
    // In turn first, so that whatever drifts within a round weighs on both alike.
    var (plain, withInspector) = (0.0, 0.0)
    if round % 2 == 1 {
        plain = nanosecondsPerExchange(app, count)
        withInspector = nanosecondsPerExchange(captured, count)
    } else {
        withInspector = nanosecondsPerExchange(captured, count)
        plain = nanosecondsPerExchange(app, count)
    }
    costs.append(withInspector - plain)
    print(
        String(
            format: "round %d  without %.0f ns  with the inspector %.0f ns  its cost %.0f ns per exchange", round,
            plain, withInspector, withInspector - plain))
}
let sorted = costs.sorted()
let median = (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
print(
    String(
        format: "median cost of the inspector: %.0f ns per exchange (%d rounds of %d)", median, costs.count, count))
