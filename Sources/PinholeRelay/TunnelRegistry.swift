import NIOConcurrencyHelpers
import NIOCore
import PinholeCore
import PinholeTunnel

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
final class TunnelRegistry: Sendable {
    struct Entry {
        var name: String
        var owner: TokenDigest
        var aliases: [ServiceAlias]
        /// The service this tunnel shares with other developers, if it declared one.
        var share: ServiceShare? = nil
        var port: Int?
        var link: TunnelLink?
        /// Changes with every registration, so a stale connection's close cannot
        /// detach the agent that replaced it.
        var generation: UInt64
        /// While disconnected: until when the name stays reserved for its owner.
        var reservedUntil: NIODeadline?
    }

    enum Registration {
        case accepted(Entry, replaced: TunnelLink?)
        case refused(RefusalReason, String)
    }

    struct State {
        var entries: [String: Entry] = [:]
        /// Dedicated ports, kept per name so a reconnect gets the same one. A name that
        /// is gone (disconnected past its reservation) gives its port up to a new name
        /// once no port is left that was never used.
        var portOfName: [String: Int] = [:]
        var nameOfPort: [Int: String] = [:]
        /// Ports in the range that another program held when the relay tried to listen
        /// on them, skipped until then; after that they are tried again.
        var busyUntil: [Int: NIODeadline] = [:]
        var nextGeneration: UInt64 = 1
        /// Entries that have aliases; zero lets a lookup skip the alias search.
        var aliasCount = 0
        /// Numbers the announcements of who shares a service (`ServiceMembers.revision`).
        var nextRevision: UInt64 = 1
    }

    let state = NIOLockedValueBox(State())
    private let domain: String?
    private let tunnelPorts: ClosedRange<Int>?
    private let maxTunnels: Int
    private let reservation: TimeAmount

    init(domain: String?, tunnelPorts: ClosedRange<Int>?, maxTunnels: Int, reservation: TimeAmount) {
        self.domain = domain
        self.tunnelPorts = tunnelPorts
        self.maxTunnels = maxTunnels
        self.reservation = reservation
    }

    func register(
        name: String, aliases: [ServiceAlias], owner: TokenDigest, share: ServiceShare? = nil
    ) -> Registration {
        let now = NIODeadline.now()
        return state.withLockedValue { state in
            state.entries = state.entries.filter { $0.value.link != nil || ($0.value.reservedUntil ?? now) > now }
            let existing = state.entries[name]
            if let existing, existing.owner != owner {
                return .refused(.nameTaken, "the tunnel name '\(name)' is held by another token; choose another --name")
            }
            if existing == nil, state.entries.count >= maxTunnels {
                return .refused(.tooManyTunnels, "the relay already has its maximum of \(maxTunnels) tunnels")
            }
            if let refusal = Self.aliasConflict(aliases, share: share, name: name, entries: state.entries) {
                return refusal
            }
            var port: Int?
            if let tunnelPorts {
                state.busyUntil = state.busyUntil.filter { $0.value > now }
                let busy = state.busyUntil
                let usable = { (port: Int) in busy[port] == nil }
                if let kept = state.portOfName[name] {
                    port = kept
                } else if let free = tunnelPorts.first(where: { state.nameOfPort[$0] == nil && usable($0) })
                    ?? tunnelPorts.first(where: {
                        usable($0) && (state.nameOfPort[$0].map { state.entries[$0] == nil } ?? false)
                    })
                {
                    if let previous = state.nameOfPort[free] { state.portOfName[previous] = nil }
                    port = free
                    state.portOfName[name] = free
                    state.nameOfPort[free] = name
                } else if domain == nil {
                    return .refused(
                        .noFreePort, Self.noFreePortMessage(tunnelPorts, state: state, reservation: reservation))
                }
            }
            let entry = Entry(
                name: name, owner: owner, aliases: aliases, share: share, port: port, link: nil,
                generation: state.nextGeneration, reservedUntil: now + reservation)
            state.nextGeneration += 1
            state.entries[name] = entry
            state.aliasCount = state.entries.values.filter { !$0.aliases.isEmpty }.count
            return .accepted(entry, replaced: existing?.link)
        }
    }

    /// The relay could not listen on `port` (another program holds it): forget whose it
    /// was, and skip it for a reservation period, so the name gets another port when it
    /// registers again instead of failing on this one.
    func portUnavailable(_ port: Int) {
        let until = NIODeadline.now() + reservation
        state.withLockedValue { state in
            state.busyUntil[port] = until
            guard let name = state.nameOfPort.removeValue(forKey: port) else { return }
            if state.portOfName[name] == port { state.portOfName[name] = nil }
        }
    }

    /// Why no port is left, counted by cause, and what to do about it.
    private static func noFreePortMessage(_ range: ClosedRange<Int>, state: State, reservation: TimeAmount) -> String {
        var connected = 0
        var held = 0
        for port in range {
            guard let name = state.nameOfPort[port], let entry = state.entries[name] else { continue }
            if entry.link != nil { connected += 1 } else { held += 1 }
        }
        let busy = range.filter { state.busyUntil[$0] != nil }.count
        var causes: [String] = []
        if connected > 0 { causes.append("\(connected) by connected \(connected == 1 ? "tunnel" : "tunnels")") }
        if held > 0 {
            causes.append(
                "\(held) held for \(held == 1 ? "a tunnel" : "tunnels") whose agent disconnected (a tunnel keeps "
                    + "its port for \(RelayConfiguration.describe(reservation)), to come back at the same address)")
        }
        if busy > 0 { causes.append("\(busy) by other programs") }
        return "every port in \(range.lowerBound)-\(range.upperBound) is in use: "
            + causes.joined(separator: ", ") + "; widen --tunnel-ports, or wait for a held port to be freed"
    }

    /// The agent's connection is ready to carry requests. The developers on its
    /// service, if it shares one, are told it joined.
    func attach(name: String, generation: UInt64, link: TunnelLink) -> Bool {
        let announcement = state.withLockedValue { state -> MembersAnnouncement?? in
            guard state.entries[name]?.generation == generation else { return .none }
            state.entries[name]?.link = link
            state.entries[name]?.reservedUntil = nil
            return .some(state.entries[name]?.share.map { Self.announcement(of: $0, in: &state) })
        }
        guard case .some(let joined) = announcement else { return false }
        joined?.send()
        return true
    }

    /// The agent's connection closed; its name stays reserved for a while, and the
    /// developers on its service are told it left.
    func detach(name: String, generation: UInt64) {
        let until = NIODeadline.now() + reservation
        let announcement = state.withLockedValue { state -> MembersAnnouncement? in
            guard state.entries[name]?.generation == generation else { return nil }
            state.entries[name]?.link = nil
            state.entries[name]?.reservedUntil = until
            return state.entries[name]?.share.map { Self.announcement(of: $0, in: &state) }
        }
        announcement?.send()
    }

    /// The tunnel a Host header names: `NAME.DOMAIN` or a registered service alias.
    func target(forHost host: String) throws(ExchangeError) -> (any ExchangeTarget)? {
        // Without a domain and without aliases (a relay of dedicated ports), no Host can
        // name a tunnel: skip the parsing altogether.
        let hasAliases = state.withLockedValue { $0.aliasCount > 0 }
        guard domain != nil || hasAliases else { return nil }
        let hostname = Self.hostname(host)
        // Parsed once, outside the lock every event loop shares, and only when there are
        // aliases and the host could name a Service (names start with a letter).
        let couldBeAlias = hasAliases && (hostname.first?.isLetter ?? false)
        let aliasShapes = couldBeAlias ? ServiceAlias.shapes(ofHost: host) : []
        enum Found {
            case byName(Entry), byAlias(Entry)
        }
        let lookup: Found? = state.withLockedValue { state in
            if let domain, hostname.hasSuffix(domain), hostname.utf8.count > domain.utf8.count,
                hostname.utf8.dropLast(domain.utf8.count).last == UInt8(ascii: ".")
            {
                let name = String(hostname.dropLast(domain.count + 1))
                if !name.contains("."), let entry = state.entries[name] { return .byName(entry) }
            }
            guard state.aliasCount > 0, !aliasShapes.isEmpty else { return nil }
            return state.entries.values.first { $0.aliases.contains { $0.matches(shapes: aliasShapes) } }
                .map(Found.byAlias)
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
        let entry = state.withLockedValue { state in state.nameOfPort[port].flatMap { state.entries[$0] } }
        guard let entry else { return nil }
        // The port is what names this tunnel, so the 503 names it too, as the 502 does.
        guard let link = entry.link else { throw .agentNotConnected(host: "\(Self.hostname(host)):\(port)") }
        return link.target
    }

    var connectedCount: Int { state.withLockedValue { $0.entries.values.filter { $0.link != nil }.count } }

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
