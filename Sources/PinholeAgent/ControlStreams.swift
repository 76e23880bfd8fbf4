import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeTunnel

/// The agent's target on a relay connection: public requests go to the app; control
/// streams (`:scheme pinhole`, which only the relay writes) are answered here.
struct ControlRoutingTarget: ExchangeTarget {
    let app: any ExchangeTarget
    /// Called with each newer list of developers sharing the service.
    let onMembers: @Sendable (ServiceMembers) -> Void
    /// The newest revision applied on this connection: announcements travel on separate
    /// streams, and one may finish after a newer one.
    let lastRevision = NIOLockedValueBox<UInt64>(0)

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        guard head.scheme == TunnelControl.scheme else {
            return try app.startExchange(head, downstream: downstream, on: eventLoop)
        }
        return ControlExchange(path: head.path, downstream: downstream) { [lastRevision, onMembers] members in
            let newer = lastRevision.withLockedValue { last in
                guard members.revision > last else { return false }
                last = members.revision
                return true
            }
            if newer { onMembers(members) }
        }
    }
}

/// One control stream: its JSON body is read whole (it is small), acted on, and answered
/// 204, or 400 / 404 when it cannot be.
final class ControlExchange: ExchangeUpstream {
    private static let maximumBody = 256 * 1024
    private let path: String
    private var downstream: (any ExchangeDownstream)?
    private var body = ByteBuffer()
    private let onMembers: (ServiceMembers) -> Void

    init(path: String, downstream: any ExchangeDownstream, onMembers: @escaping (ServiceMembers) -> Void) {
        self.path = path
        self.downstream = downstream
        self.onMembers = onMembers
    }

    var canTakeRequestBody: Bool { true }

    func sendBody(_ part: ByteBuffer) {
        guard body.readableBytes + part.readableBytes <= Self.maximumBody else {
            answer(.payloadTooLarge)
            return
        }
        var part = part
        body.writeBuffer(&part)
    }

    func sendEnd(trailers: HTTPHeaders?) {
        guard path == TunnelControl.membersPath else {
            answer(.notFound)
            return
        }
        guard let members = try? JSONDecoder().decode(ServiceMembers.self, from: Data(body.readableBytesView)) else {
            answer(.badRequest)
            return
        }
        onMembers(members)
        answer(.noContent)
    }

    func cancel() {
        downstream = nil
    }

    func downstreamWritabilityChanged() {}

    private func answer(_ status: HTTPResponseStatus) {
        guard let downstream else { return }
        self.downstream = nil
        var headers = HTTPHeaders()
        if status != .noContent { headers.add(name: "content-length", value: "0") }
        downstream.exchangeReceivedHead(ProxyResponseHead(status: status, headers: headers))
        downstream.exchangeReceivedEnd(trailers: nil)
    }
}
