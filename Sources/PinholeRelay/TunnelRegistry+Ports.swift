import Foundation
import NIOCore

// Dedicated ports (a relay without --domain): each name keeps its port while it is its
// token's, and a port never goes to another token's name.

extension TunnelRegistry {
    enum PortChoice {
        /// nil on a relay of names under a domain.
        case port(Int?)
        case refused(String)
    }

    /// The port `name` gets: its own if it has one, else one nobody owns, else one of
    /// its token's names that has been away past the reservation (in the other order
    /// once the token holds `maxTunnelsPerToken` ports). Ports other programs held
    /// lately come last, and `avoiding` (held during this very hello) never.
    func choosePort(
        for name: String, owner: TokenDigest, avoiding: Set<Int>, state: inout State, now: Date
    ) -> PortChoice {
        guard let tunnelPorts else { return .port(nil) }
        let busyFor = Self.seconds(limits.reservation)
        state.busySince = state.busySince.filter { now.timeIntervalSince($0.value) < busyFor }
        if let own = state.entries[name]?.port, !avoiding.contains(own) { return .port(own) }
        let reservation = Self.seconds(limits.reservation)
        let entries = state.entries
        let nameOfPort = state.nameOfPort
        /// Whether `port` may go to `name`: nobody's, or an away name's of the same token.
        func available(_ port: Int) -> Bool {
            guard !avoiding.contains(port) else { return false }
            guard let holder = nameOfPort[port], holder != name, let entry = entries[holder] else { return true }
            guard entry.owner == owner, let since = entry.phase.awaySince else { return false }
            return now.timeIntervalSince(since) >= reservation
        }
        let busy = state.busySince
        let fresh = { (port: Int) in nameOfPort[port] == nil && busy[port] == nil && available(port) }
        let reusable = { (port: Int) in nameOfPort[port] != nil && busy[port] == nil && available(port) }
        // A token holding its share of ports (its tunnel quota) reuses its own before it
        // takes another: away names keep their ports for long, and one token cycling
        // through names must not leave none for the others.
        let held = nameOfPort.values.filter { entries[$0]?.owner == owner }.count
        let order = held >= limits.maxTunnelsPerToken ? [reusable, fresh] : [fresh, reusable]
        let chosen =
            tunnelPorts.first(where: order[0]) ?? tunnelPorts.first(where: order[1])
            ?? tunnelPorts.first(where: available)
        guard let chosen else {
            if domain != nil { return .port(nil) }
            return .refused(noFreePortMessage(tunnelPorts, state: state, avoiding: avoiding, owner: owner))
        }
        if let previous = state.nameOfPort[chosen], previous != name { state.entries[previous]?.port = nil }
        if let old = state.entries[name]?.port, state.nameOfPort[old] == name { state.nameOfPort[old] = nil }
        state.nameOfPort[chosen] = name
        return .port(chosen)
    }

    /// The relay could not listen on `port` (another program holds it): its name loses
    /// it (the name gets another port on its next try), and it is tried after every
    /// other port for a while.
    func portUnavailable(_ port: Int, now: Date = Date()) {
        state.withLock { state in
            state.busySince[port] = now
            guard let name = state.nameOfPort.removeValue(forKey: port) else { return }
            if state.entries[name]?.port == port { state.entries[name]?.port = nil }
            save(state, now: now)
        }
    }

    /// Why no port is left, counted by cause, and what to do about it.
    private func noFreePortMessage(
        _ range: ClosedRange<Int>, state: State, avoiding: Set<Int>, owner: TokenDigest
    ) -> String {
        var connected = 0
        var heldOwn = 0
        var heldOthers = 0
        for port in range where !avoiding.contains(port) {
            guard let name = state.nameOfPort[port], let entry = state.entries[name] else { continue }
            if entry.phase.isLive {
                connected += 1
            } else if entry.owner == owner {
                heldOwn += 1
            } else {
                heldOthers += 1
            }
        }
        let busy = avoiding.filter { range.contains($0) }.count
        var causes: [String] = []
        if connected > 0 { causes.append("\(connected) by connected \(connected == 1 ? "tunnel" : "tunnels")") }
        if heldOwn > 0 {
            causes.append(
                "\(heldOwn) held for this token's \(heldOwn == 1 ? "tunnel" : "tunnels") whose agent disconnected "
                    + "(its other names may have such a port \(RelayConfiguration.describe(limits.reservation)) "
                    + "after it left)")
        }
        if heldOthers > 0 {
            let kept =
                limits.forgetAfter.map { " until unused for \(RelayConfiguration.describe($0)) (--forget-after)" }
                ?? ""
            causes.append(
                "\(heldOthers) held for other tokens' \(heldOthers == 1 ? "tunnel" : "tunnels") (a tunnel keeps "
                    + "its port\(kept), to come back at the same address)")
        }
        if busy > 0 { causes.append("\(busy) by other programs") }
        return "every port in \(range.lowerBound)-\(range.upperBound) is in use: "
            + causes.joined(separator: ", ") + "; widen --tunnel-ports, or wait for a held port to be freed"
    }
}

extension TunnelRegistry {
    /// The dedicated ports names hold now (after a restart: before their agents are back).
    var heldPorts: [Int] { state.withLock { $0.nameOfPort.keys.sorted() } }
}
