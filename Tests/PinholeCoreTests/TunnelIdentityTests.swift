import NIOCore
import Testing

@testable import PinholeCore

@Suite("What the per-tunnel cap counts a target by")
struct TunnelIdentityTests {
    final class ClassTarget: ExchangeTarget {
        func startExchange(
            _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
        ) throws(ExchangeError) -> any ExchangeUpstream {
            throw .agentStopped
        }
    }

    struct StructTarget: ExchangeTarget {
        func startExchange(
            _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
        ) throws(ExchangeError) -> any ExchangeUpstream {
            throw .agentStopped
        }
    }

    @Test("a class target is counted by its identity, also seen as an existential; a struct by none")
    func identities() {
        let first = ClassTarget()
        let second = ClassTarget()
        let seen: [any ExchangeTarget] = [first, second, StructTarget()]
        #expect(seen[0].tunnelIdentity == ObjectIdentifier(first))
        #expect(seen[1].tunnelIdentity == ObjectIdentifier(second))
        #expect(seen[0].tunnelIdentity != seen[1].tunnelIdentity)
        #expect(seen[2].tunnelIdentity == nil)
        // A struct around a tunnel (a wrapper the relay routes through) counts per address.
        #expect(ResponseMarkingTarget(first, fields: []).tunnelIdentity == nil)
    }
}
