import Foundation
import NIOCore
import PinholeCore
import PinholeTunnel
import Synchronization

/// A connected agent's tunnel, as the registry keeps it.
struct TunnelLink: Sendable {
    let target: TunnelTarget
    /// What the agent was told (its public address), for the other agents on its service.
    var tunnel: RelayAnswer.Tunnel? = nil
    /// Tells the agent's connection that another connection took its name over, and
    /// closes it.
    let replace: @Sendable () -> Void
}

/// The relay's tunnels: who owns each name, its aliases and port, and whether its
/// agent is connected. Shared by every event loop, so it is guarded by a lock; each
/// public request takes it once, briefly, to find its tunnel.
///
/// A name, its aliases and its dedicated port belong to the token that registered them
/// until they have gone unused for `Limits.forgetAfter`, across relay restarts (the
/// registry is kept in a file, see `RegistryFile`): no other token gets them, connected
/// or not. The same token's other names may take over an away name's port or aliases
/// once it has been away for `Limits.reservation`.
final class TunnelRegistry: Sendable {
    struct Limits: Sendable {
        /// Live tunnels (connected or registering) on the relay (`--max-tunnels`).
        var maxTunnels = 1000
        /// Live tunnels of one token (`--max-tunnels-per-token`).
        var maxTunnelsPerToken = 32
        /// Names one token owns, live or away (`--max-names-per-token`): a new one past
        /// this forgets the token's longest unused name.
        var maxNamesPerToken = 128
        /// How long an away name's port and aliases stay out of reach of its own token's
        /// other names.
        var reservation: TimeAmount = RelayConfiguration.defaultReservation
        /// How long an unused name stays its token's (`--forget-after`); nil for ever.
        var forgetAfter: TimeAmount? = RelayConfiguration.defaultForgetAfter
    }

    struct Entry {
        var name: String
        var owner: TokenDigest
        var aliases: [ServiceAlias]
        /// The service this tunnel shares with other developers, if it declared one.
        var share: ServiceShare? = nil
        var port: Int?
        var phase: TunnelPhase<TunnelLink>
        /// When a connection for this name last registered or left (wall clock, as kept
        /// in the registry file).
        var lastUsed: Date

        var link: TunnelLink? { phase.link }
    }

    enum Registration {
        /// `generation` names this registration in `attach` and `detach`.
        case accepted(Entry, generation: UInt64)
        case refused(RefusalReason, String)
    }

    struct State {
        var entries: [String: Entry] = [:]
        var nameOfPort: [Int: String] = [:]
        /// Ports in the range that another program held when the relay tried to listen
        /// on them, and since when: tried after every other port, and never for long.
        var busySince: [Int: Date] = [:]
        var nextGeneration: UInt64 = 1
        /// The names of the tunnels with an alias of each service: a Host is looked up
        /// here, never by a scan.
        var aliasHolders: [String: [String]] = [:]
        /// Numbers the announcements of who shares a service (`ServiceMembers.revision`).
        var nextRevision: UInt64 = 1
    }

    /// Taken for every public request routed by Host, from every event loop: a `Mutex`
    /// (see `InspectorStore.state`).
    let state = Mutex(State())
    let domain: String?
    let tunnelPorts: ClosedRange<Int>?
    let limits: Limits
    /// Where the registry is kept across restarts; nil keeps it in memory only.
    let file: RegistryFile?

    init(domain: String?, tunnelPorts: ClosedRange<Int>?, limits: Limits, file: RegistryFile? = nil) {
        self.domain = domain
        self.tunnelPorts = tunnelPorts
        self.limits = limits
        self.file = file
    }

    convenience init(domain: String?, tunnelPorts: ClosedRange<Int>?, maxTunnels: Int, reservation: TimeAmount) {
        var limits = Limits()
        limits.maxTunnels = maxTunnels
        limits.reservation = reservation
        self.init(domain: domain, tunnelPorts: tunnelPorts, limits: limits)
    }

    /// Registers `name` for `owner`, avoiding the dedicated ports in `avoiding` (this
    /// hello found them held by other programs). An existing connection for the name
    /// keeps serving until the new one is attached.
    func register(
        name: String, aliases: [ServiceAlias], owner: TokenDigest, share: ServiceShare? = nil,
        avoiding: Set<Int> = [], now: Date = Date()
    ) -> Registration {
        state.withLock { state in
            forgetUnused(in: &state, now: now)
            let existing = state.entries[name]
            if let existing, existing.owner != owner {
                return .refused(
                    .nameTaken,
                    "the tunnel name '\(name)' belongs to another token\(keptNote); choose another --name")
            }
            if existing?.phase.isLive != true, let refusal = quotaRefusal(owner, in: state) {
                return refusal
            }
            let released: [(name: String, alias: ServiceAlias)]
            switch aliasClaims(aliases, share: share, name: name, owner: owner, state: state, now: now) {
            case .refused(let reason, let message): return .refused(reason, message)
            case .free(let toRelease): released = toRelease
            }
            let port: Int?
            switch choosePort(for: name, owner: owner, avoiding: avoiding, state: &state, now: now) {
            case .refused(let message): return .refused(.noFreePort, message)
            case .port(let chosen): port = chosen
            }
            if existing == nil { makeRoom(for: owner, in: &state) }
            for (holder, alias) in released { state.entries[holder]?.aliases.removeAll { $0 == alias } }
            let generation = state.nextGeneration
            state.nextGeneration += 1
            var entry =
                existing
                ?? Entry(name: name, owner: owner, aliases: [], port: nil, phase: .away(since: now), lastUsed: now)
            entry.aliases = aliases
            entry.share = share
            entry.port = port
            entry.lastUsed = now
            entry.phase.register(generation: generation)
            state.entries[name] = entry
            Self.indexAliases(&state)
            save(state, now: now)
            return .accepted(entry, generation: generation)
        }
    }

    /// Why `owner` may not have another live tunnel, if it may not.
    private func quotaRefusal(_ owner: TokenDigest, in state: State) -> Registration? {
        var live = 0
        var ownLive = 0
        for entry in state.entries.values where entry.phase.isLive {
            live += 1
            if entry.owner == owner { ownLive += 1 }
        }
        if live >= limits.maxTunnels {
            return .refused(
                .tooManyTunnels, "the relay already has its maximum of \(limits.maxTunnels) tunnels (--max-tunnels)")
        }
        if ownLive >= limits.maxTunnelsPerToken {
            return .refused(
                .tooManyTunnels,
                "this token already has \(limits.maxTunnelsPerToken) "
                    + "\(limits.maxTunnelsPerToken == 1 ? "tunnel" : "tunnels") on the relay "
                    + "(--max-tunnels-per-token); stop one of its agents, or wait for one to stop")
        }
        return nil
    }

    /// A token about to own one name more than it may forgets its longest unused one.
    private func makeRoom(for owner: TokenDigest, in state: inout State) {
        let owned = state.entries.values.filter { $0.owner == owner }
        guard owned.count >= limits.maxNamesPerToken,
            let oldest = owned.filter({ !$0.phase.isLive }).min(by: { $0.lastUsed < $1.lastUsed })
        else { return }
        forget(oldest.name, in: &state)
    }

    /// Drops the names nobody used for `forgetAfter`, with their ports and aliases.
    func forgetUnused(in state: inout State, now: Date) {
        guard let forgetAfter = limits.forgetAfter else { return }
        let cutoff = now.addingTimeInterval(-Self.seconds(forgetAfter))
        let unused = state.entries.values.filter { !$0.phase.isLive && $0.lastUsed < cutoff }.map(\.name)
        for name in unused { forget(name, in: &state) }
        if !unused.isEmpty { Self.indexAliases(&state) }
    }

    func forget(_ name: String, in state: inout State) {
        guard let entry = state.entries.removeValue(forKey: name) else { return }
        if let port = entry.port, state.nameOfPort[port] == name { state.nameOfPort[port] = nil }
    }

    /// The agent's connection is ready to carry requests. Returns nil when a newer
    /// registration for the name came since (this connection must be refused), else the
    /// connection it replaced, if any, which the caller tells and closes. The developers
    /// on its service, if it shares one, are told it joined.
    func attach(name: String, generation: UInt64, link: TunnelLink) -> TunnelPhase<TunnelLink>.AttachAction {
        let (action, announcement) = state.withLock {
            state -> (TunnelPhase<TunnelLink>.AttachAction, MembersAnnouncement?) in
            guard var entry = state.entries[name] else { return (.superseded, nil) }
            let action = entry.phase.attach(generation: generation, link: link)
            state.entries[name] = entry
            guard case .attached = action else { return (action, nil) }
            return (action, entry.share.map { Self.announcement(of: $0, in: &state) })
        }
        announcement?.send()
        return action
    }

    /// The connection registered as `generation` closed (or was refused); the name stays
    /// its token's, and the developers on its service are told it left.
    func detach(name: String, generation: UInt64, now: Date = Date()) {
        let announcement = state.withLock { state -> MembersAnnouncement? in
            guard var entry = state.entries[name] else { return nil }
            let hadLink = entry.link != nil
            entry.phase.detach(generation: generation, now: now)
            if !entry.phase.isLive { entry.lastUsed = now }
            state.entries[name] = entry
            save(state, now: now)
            guard hadLink, entry.link == nil else { return nil }
            return entry.share.map { Self.announcement(of: $0, in: &state) }
        }
        announcement?.send()
    }

    /// The tunnel a Host header names: `NAME.DOMAIN` or a registered service alias.
    func target(forHost host: String) throws(ExchangeError) -> (any ExchangeTarget)? {
        // Without a domain and without aliases (a relay of dedicated ports), no Host can
        // name a tunnel: skip the parsing altogether.
        let hasAliases = state.withLock { !$0.aliasHolders.isEmpty }
        guard domain != nil || hasAliases else { return nil }
        let hostname = Self.hostname(host)
        // Parsed once, outside the lock every event loop shares, and only when there are
        // aliases and the host could name a Service (names start with a letter).
        let couldBeAlias = hasAliases && (hostname.first?.isLetter ?? false)
        let aliasShapes = couldBeAlias ? ServiceAlias.shapes(ofHost: host) : []
        enum Found {
            case byName(Entry), byAlias(Entry)
        }
        let lookup: Found? = state.withLock { state in
            if let domain, hostname.hasSuffix(domain), hostname.utf8.count > domain.utf8.count,
                hostname.utf8.dropLast(domain.utf8.count).last == UInt8(ascii: ".")
            {
                let name = String(hostname.dropLast(domain.count + 1))
                if !name.contains("."), let entry = state.entries[name] { return .byName(entry) }
            }
            for shape in aliasShapes {
                for holder in state.aliasHolders[shape.service] ?? [] {
                    guard let entry = state.entries[holder],
                        entry.aliases.contains(where: { $0.matches(shapes: aliasShapes) })
                    else { continue }
                    return .byAlias(entry)
                }
            }
            return nil
        }
        let entry: Entry
        switch lookup {
        case nil:
            return nil
        case .byName(let named):
            entry = named
        case .byAlias(let holder):
            // A shared service's alias goes to the developer whose match the request carries.
            if let share = holder.share { return try sharedTarget(for: share, host: hostname) }
            entry = holder
        }
        guard let link = entry.link else { throw .agentNotConnected(host: hostname) }
        return link.target
    }

    /// The tunnel whose dedicated port a request arrived on.
    func target(forPort port: Int, host: String) throws(ExchangeError) -> TunnelTarget? {
        let entry = state.withLock { state in state.nameOfPort[port].flatMap { state.entries[$0] } }
        guard let entry else { return nil }
        // The port is what names this tunnel, so the 503 names it too, as the 502 does.
        guard let link = entry.link else { throw .agentNotConnected(host: "\(Self.hostname(host)):\(port)") }
        return link.target
    }

    var connectedCount: Int { state.withLock { $0.entries.values.filter { $0.link != nil }.count } }

    static func hostname(_ host: String) -> String {
        let hasUppercase = host.utf8.contains { $0 >= 0x41 && $0 <= 0x5A }
        var name = Substring(hasUppercase ? host.lowercased() : host)
        if name.hasPrefix("["), let close = name.firstIndex(of: "]") {
            return String(name[...close])
        }
        if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        if name.hasSuffix(".") { name = name.dropLast() }
        return String(name)
    }

    static func seconds(_ amount: TimeAmount) -> TimeInterval {
        TimeInterval(amount.nanoseconds) / 1e9
    }

    /// How long another token's name, alias or port stays out of reach, for refusals.
    var keptNote: String {
        guard let forgetAfter = limits.forgetAfter else { return "" }
        return " (it stays theirs until unused for \(RelayConfiguration.describe(forgetAfter)), --forget-after)"
    }
}

/// Routes public requests: by Host first (tunnel names, then aliases), then by the
/// dedicated port they arrived on. Anything else is a 404 that lists nothing.
struct RelayRouter: PublicRouter {
    let registry: TunnelRegistry

    func target(forHost host: String, localPort: Int) throws(ExchangeError) -> any ExchangeTarget {
        if let target = try registry.target(forHost: host) { return target }
        if let target = try registry.target(forPort: localPort, host: host) { return target }
        throw .noRoute(host: TunnelRegistry.hostname(host))
    }
}
