import Foundation
import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeTunnel

// Several developers on one Kubernetes Service: the tunnels that declared the same
// service share its alias; each takes the requests that carry its match, and no two
// connected developers may hold the same match.

extension TunnelRegistry {
    /// The connected developers on `share`'s service, as an announcement for each of them.
    /// Called under the registry's lock.
    static func announcement(of share: ServiceShare, in state: inout State) -> MembersAnnouncement {
        let sharing = connectedMembers(of: share, in: state)
        let members = sharing.compactMap { entry -> ServiceMembers.Member? in
            guard let tunnel = entry.link?.tunnel, let share = entry.share else { return nil }
            return ServiceMembers.Member(tunnel: tunnel, share: share)
        }
        let revision = state.nextRevision
        state.nextRevision += 1
        return MembersAnnouncement(
            members: ServiceMembers(
                revision: revision, service: share.service, namespace: share.namespace, members: members),
            targets: sharing.compactMap { $0.link?.target })
    }

    /// The connected tunnels sharing `share`'s service, by name (found through the alias
    /// index: every member holds the service's alias).
    static func connectedMembers(of share: ServiceShare, in state: State) -> [Entry] {
        (state.aliasHolders[share.service] ?? []).compactMap { name in
            state.entries[name].flatMap { $0.link != nil && $0.share?.serviceKey == share.serviceKey ? $0 : nil }
        }
    }

    /// Where a request for a shared service's alias goes: to the one developer connected,
    /// or with several, to the first (by tunnel name) whose match the request carries.
    func sharedTarget(for share: ServiceShare, host: String) throws(ExchangeError) -> any ExchangeTarget {
        let members = state.withLock { Self.connectedMembers(of: share, in: $0) }
            .compactMap { entry in
                entry.link.flatMap { link in entry.share.map { (match: $0.match, target: link.target) } }
            }
        guard let first = members.first else { throw .agentNotConnected(host: host) }
        if members.count == 1 { return first.target }
        return SharedServiceTarget(host: host, members: members)
    }
}

/// A shared service's alias with several developers connected: each request goes to the
/// first developer whose header match it carries. Mirrored copies reach the relay only
/// when they carry some developer's match (the VirtualService's mirror rules are matched).
struct SharedServiceTarget: ExchangeTarget {
    let host: String
    let members: [(match: HeaderCondition, target: TunnelTarget)]

    func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        guard let member = member(for: head) else { throw .noRoute(host: host) }
        return try member.startExchange(head, downstream: downstream, on: eventLoop)
    }

    /// The developer's tunnel the request goes to: its requests in flight count against
    /// that tunnel's cap, as they would through the tunnel's own name. (Counted per
    /// address only, a crowd of clients on the alias could fill one developer's tunnel.)
    func tunnelIdentity(for head: ProxyRequestHead) -> ObjectIdentifier? {
        member(for: head)?.tunnelIdentity
    }

    private func member(for head: ProxyRequestHead) -> TunnelTarget? {
        members.first(where: { $0.match.matches(head.headers) })?.target
    }
}

/// Who shares a service now, to be sent to each of them on a control stream.
struct MembersAnnouncement: Sendable {
    let members: ServiceMembers
    let targets: [TunnelTarget]

    func send() {
        guard let body = try? JSONEncoder().encode(members) else { return }
        for target in targets {
            target.eventLoop.execute {
                var buffer = ByteBufferAllocator().buffer(capacity: body.count)
                buffer.writeBytes(body)
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "application/json")
                headers.add(name: "content-length", value: String(body.count))
                let head = ProxyRequestHead(
                    method: .PUT, path: TunnelControl.membersPath,
                    authority: members.service + "." + members.namespace, scheme: TunnelControl.scheme,
                    headers: headers)
                // The agent answers 204; nothing is done with it. A tunnel that went away
                // meanwhile is told nothing, and the next announcement leaves it out.
                guard
                    let upstream = try? target.startExchange(head, downstream: IgnoredResponse(), on: target.eventLoop)
                else { return }
                upstream.sendBody(buffer)
                upstream.sendEnd(trailers: nil)
            }
        }
    }
}

/// The downstream of a control stream: the agent's answer carries nothing to act on.
private final class IgnoredResponse: ExchangeDownstream {
    func exchangeReceivedHead(_ head: ProxyResponseHead) {}
    func exchangeReceivedBody(_ body: ByteBuffer) {}
    func exchangeReceivedEnd(trailers: HTTPHeaders?) {}
    func exchangeFailed(_ error: ExchangeError) {}
    func exchangeUpstreamWritabilityChanged() {}
    var canTakeResponseBody: Bool { true }
}
