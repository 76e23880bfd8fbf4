import Foundation
import NIOCore
import PinholeCore
import PinholeTunnel
import Testing

@testable import PinholeRelay

/// Registers and detaches tunnels the way connections would, without channels: a
/// registration that is never attached is live until its connection "closes" (detach).
struct RegistryDriver {
    let registry: TunnelRegistry
    var now = Date()

    struct Refused: Error, Equatable {
        let reason: RefusalReason
        let message: String
    }

    /// Registers `name` for `owner`; the port (-1 for none) and the generation, or the refusal.
    func register(
        _ name: String, owner: TokenDigest, aliases: [String] = [], avoiding: Set<Int> = []
    ) -> Result<(port: Int, generation: UInt64), Refused> {
        let parsed = aliases.map { try! ServiceAlias(description: $0) }
        switch registry.register(name: name, aliases: parsed, owner: owner, avoiding: avoiding, now: now) {
        case .accepted(let entry, let generation): return .success((entry.port ?? -1, generation))
        case .refused(let reason, let message): return .failure(Refused(reason: reason, message: message))
        }
    }

    func port(_ name: String, owner: TokenDigest, aliases: [String] = []) -> Result<Int, Refused> {
        register(name, owner: owner, aliases: aliases).map(\.port)
    }

    /// Registers `name` and closes its connection at once: the name is away from `now`.
    func visit(_ name: String, owner: TokenDigest, aliases: [String] = []) -> Result<Int, Refused> {
        let result = register(name, owner: owner, aliases: aliases)
        if case .success(let registered) = result {
            registry.detach(name: name, generation: registered.generation, now: now)
        }
        return result.map(\.port)
    }

    func refusal(_ result: Result<Int, Refused>) -> Refused? {
        if case .failure(let refused) = result { return refused }
        return nil
    }
}

@Suite("Tunnel registry: names and dedicated ports")
struct TunnelRegistryTests {
    let alice = TokenDigest(token: "alice-token-0123456789")
    let bob = TokenDigest(token: "bob-token-0123456789")

    private func driver(
        ports: ClosedRange<Int>? = 5000...5001, reservation: TimeAmount = .seconds(60),
        _ adjust: (inout TunnelRegistry.Limits) -> Void = { _ in }
    ) -> RegistryDriver {
        var limits = TunnelRegistry.Limits(reservation: reservation)
        adjust(&limits)
        return RegistryDriver(
            registry: TunnelRegistry(domain: ports == nil ? "tunnels.test" : nil, tunnelPorts: ports, limits: limits))
    }

    @Test("an away name's port goes to its token's new name once every port has been used and it has lapsed")
    func portsOfGoneNamesAreReused() {
        let relay = driver(reservation: .zero)
        #expect(relay.visit("a", owner: alice) == .success(5000))
        #expect(relay.visit("b", owner: alice) == .success(5001))
        #expect(relay.visit("c", owner: alice) == .success(5000))
        #expect(relay.visit("a", owner: alice) == .success(5000), "c is away again, so a takes the port back")
    }

    @Test("names still reserved keep their ports from their token's other names; the refusal says why")
    func reservedNamesKeepTheirPorts() {
        let relay = driver()
        #expect(relay.visit("a", owner: alice) == .success(5000))
        #expect(relay.visit("b", owner: alice) == .success(5001))
        #expect(
            relay.refusal(relay.port("c", owner: alice))
                == .init(
                    reason: .noFreePort,
                    message: "every port in 5000-5001 is in use: 2 held for this token's tunnels whose agent "
                        + "disconnected (its other names may have such a port 1 min after it left); widen "
                        + "--tunnel-ports, or wait for a held port to be freed"))
        #expect(relay.port("a", owner: alice) == .success(5000), "a reconnecting gets its port back")
    }

    @Test("a token holding its quota of ports reuses its own away names' ports before taking fresh ones")
    func portsPerToken() {
        let relay = driver(ports: 5000...5003, reservation: .zero) { $0.maxTunnelsPerToken = 2 }
        #expect(relay.visit("a", owner: alice) == .success(5000))
        #expect(relay.visit("b", owner: alice) == .success(5001))
        #expect(relay.visit("c", owner: alice) == .success(5000), "a's port: alice holds her two already")
        #expect(relay.visit("x", owner: bob) == .success(5002))
        #expect(relay.visit("y", owner: bob) == .success(5003), "ports were left for bob")
    }

    @Test("another token never gets an away name, nor its port, however long it has lapsed in memory")
    func anotherTokenGetsNothing() {
        let relay = driver(ports: 5000...5000, reservation: .zero)
        #expect(relay.visit("a", owner: alice) == .success(5000))
        let name = relay.refusal(relay.port("a", owner: bob))
        #expect(name?.reason == .nameTaken)
        #expect(name?.message.contains("'a' belongs to another token") == true)
        #expect(name?.message.contains("30 days") == true, "\(name?.message ?? "")")
        #expect(
            relay.refusal(relay.port("b", owner: bob))
                == .init(
                    reason: .noFreePort,
                    message: "every port in 5000-5000 is in use: 1 held for other tokens' tunnel (a tunnel keeps "
                        + "its port until unused for 30 days (--forget-after), to come back at the same address); "
                        + "widen --tunnel-ports, or wait for a held port to be freed"))
    }

    @Test("a name unused for --forget-after is forgotten: then another token may have it and its port")
    func unusedNamesAreForgotten() {
        var relay = driver(ports: 5000...5000) { $0.forgetAfter = .hours(24) }
        #expect(relay.visit("a", owner: alice) == .success(5000))
        relay.now += 23 * 3600
        #expect(relay.refusal(relay.port("a", owner: bob))?.reason == .nameTaken, "not yet")
        relay.now += 2 * 3600
        #expect(relay.port("a", owner: bob) == .success(5000))
    }

    @Test("a connected name is never forgotten, however long it has been connected")
    func connectedNamesStay() {
        var relay = driver(ports: 5000...5000) { $0.forgetAfter = .hours(24) }
        #expect(relay.port("a", owner: alice) == .success(5000))
        relay.now += 100 * 24 * 3600
        #expect(relay.refusal(relay.port("a", owner: bob))?.reason == .nameTaken)
    }

    @Test("a port another program holds is tried last, and one this hello found held is never offered")
    func busyPortIsAvoided() {
        let relay = driver(ports: 5000...5002)
        #expect(relay.register("a", owner: alice, avoiding: [5000]).map(\.port) == .success(5001))
        relay.registry.portUnavailable(5001, now: relay.now)
        #expect(relay.register("a", owner: alice, avoiding: [5000, 5001]).map(\.port) == .success(5002))
        #expect(relay.visit("b", owner: alice) == .success(5000), "the busy one is still tried: it may be free now")
        #expect(
            relay.refusal(relay.register("c", owner: alice, avoiding: [5001]).map(\.port))
                == .init(
                    reason: .noFreePort,
                    message: "every port in 5000-5002 is in use: 1 by connected tunnel, 1 held for this token's "
                        + "tunnel whose agent disconnected (its other names may have such a port 1 min after it "
                        + "left), 1 by other programs; widen --tunnel-ports, or wait for a held port to be freed"))
    }

    @Test("tunnels per token and in all are capped; an away name does not count, a registering one does")
    func quotas() {
        let relay = driver(ports: nil) {
            $0.maxTunnelsPerToken = 2
            $0.maxTunnels = 3
        }
        let first = relay.register("a", owner: alice)
        #expect(relay.port("b", owner: alice) == .success(-1))
        let own = relay.refusal(relay.port("c", owner: alice))
        #expect(own?.reason == .tooManyTunnels)
        #expect(own?.message.contains("this token already has 2 tunnels") == true)
        #expect(own?.message.contains("--max-tunnels-per-token") == true)
        #expect(relay.port("b", owner: alice) == .success(-1), "a name it has live is not one more")
        #expect(relay.port("x", owner: bob) == .success(-1), "another token has its own quota")
        let all = relay.refusal(relay.port("y", owner: bob))
        #expect(all?.reason == .tooManyTunnels)
        #expect(all?.message.contains("maximum of 3 tunnels (--max-tunnels)") == true)
        #expect(relay.refusal(relay.port("d", owner: alice))?.reason == .tooManyTunnels)
        if case .success(let a) = first { relay.registry.detach(name: "a", generation: a.generation, now: relay.now) }
        #expect(relay.port("d", owner: alice) == .success(-1), "a is away: it counts no more")
    }

    @Test("a token owning --max-names-per-token names forgets its longest unused one for a new one")
    func namesPerToken() {
        var relay = driver(ports: nil) {
            $0.maxNamesPerToken = 2
            $0.maxTunnelsPerToken = 2
        }
        #expect(relay.visit("old", owner: alice) == .success(-1))
        relay.now += 60
        #expect(relay.visit("newer", owner: alice) == .success(-1))
        relay.now += 60
        #expect(relay.visit("newest", owner: alice) == .success(-1))
        #expect(relay.port("old", owner: bob) == .success(-1), "forgotten, so free")
        #expect(relay.refusal(relay.port("newer", owner: bob))?.reason == .nameTaken)
    }

    @Test("an alias is its token's: another token is refused name_taken, even while its tunnel is away")
    func aliasesBelongToTheirToken() {
        let relay = driver(ports: nil, reservation: .zero)
        #expect(relay.visit("prod", owner: alice, aliases: ["payments.prod"]) == .success(-1))
        let refused = relay.refusal(relay.port("squat", owner: bob, aliases: ["payments.prod"]))
        #expect(refused?.reason == .nameTaken)
        #expect(refused?.message.contains("'payments.prod' is routed to another token's tunnel") == true)
        #expect(refused?.message.contains("tunnel 'prod'") == false, "the holder is not named")
        // The same token's other name takes it over once the holder has lapsed.
        #expect(relay.port("moved", owner: alice, aliases: ["payments.prod"]) == .success(-1))
    }

    @Test("aliases one Host would match together are refused, naming the alias held but not its tunnel")
    func ambiguousAliases() {
        let relay = driver(ports: nil)
        #expect(relay.port("shop", owner: alice, aliases: ["checkout.shop"]) == .success(-1))
        let refused = relay.refusal(relay.port("billing", owner: bob, aliases: ["checkout.billing"]))
        #expect(
            refused
                == .init(
                    reason: .aliasTaken,
                    message: "service 'checkout.billing' cannot be told apart from 'checkout.shop', which the relay "
                        + "already routes: a request with Host 'checkout' would match both; ask for another alias"))
        let shadow = relay.refusal(relay.port("mirror", owner: alice, aliases: ["checkout-shadow.other"]))
        #expect(shadow?.reason == .aliasTaken, "Envoy's checkout-shadow Host names both")
        #expect(relay.port("payments", owner: bob, aliases: ["payments.billing"]) == .success(-1))
        let within = relay.refusal(relay.port("both", owner: bob, aliases: ["cart.a", "cart.b"]))
        #expect(within?.reason == .invalidRequest)
        #expect(within?.message.contains("Host 'cart'") == true)
        // Routed to the one holder (whose agent is not attached here), not a 404.
        #expect(throws: ExchangeError.self) { try relay.registry.target(forHost: "checkout:3000") }
    }

    @Test("the state machine of a name's connections: a takeover replaces the old link only once attached")
    func takeover() {
        var phase = TunnelPhase<String>.away(since: Date())
        phase.register(generation: 1)
        #expect(phase.link == nil && phase.isLive)
        guard case .attached(replaced: nil) = phase.attach(generation: 1, link: "first") else {
            Issue.record("first not attached")
            return
        }
        phase.register(generation: 2)
        #expect(phase.link == "first", "the old connection serves while the new one registers")
        phase.detach(generation: 2, now: Date())
        #expect(phase.link == "first", "the new one died on the way: the old one keeps the tunnel")
        phase.register(generation: 3)
        guard case .superseded = phase.attach(generation: 2, link: "stale") else {
            Issue.record("a stale generation attached")
            return
        }
        guard case .attached(replaced: "first") = phase.attach(generation: 3, link: "third") else {
            Issue.record("third did not replace first")
            return
        }
        phase.detach(generation: 1, now: Date())
        #expect(phase.link == "third", "the replaced connection's close changes nothing")
        phase.detach(generation: 3, now: Date())
        #expect(!phase.isLive && phase.link == nil)
    }

    @Test("the serving connection closing while a newer one registers leaves the newer one to attach")
    func servingLeavesDuringTakeover() {
        var phase = TunnelPhase<String>.connected("first", generation: 1)
        phase.register(generation: 2)
        phase.detach(generation: 1, now: Date())
        #expect(phase.link == nil && phase.isLive)
        guard case .attached(replaced: nil) = phase.attach(generation: 2, link: "second") else {
            Issue.record("second not attached")
            return
        }
        #expect(phase.link == "second")
    }
}
