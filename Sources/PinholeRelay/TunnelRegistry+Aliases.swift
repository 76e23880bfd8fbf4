import Foundation
import PinholeCore
import PinholeTunnel

// Service aliases: an alias, like a name, belongs to the token that registered it; no
// two tunnels hold aliases one Host could match (`checkout.shop` and `checkout.billing`
// are both matched by `checkout:3000`); developers who share a service share its alias.

extension TunnelRegistry {
    enum AliasClaims {
        /// The aliases may be registered, once these (held by away names of the same
        /// token, past the reservation) are taken from their holders.
        case free([(name: String, alias: ServiceAlias)])
        case refused(RefusalReason, String)
    }

    /// Whether `name` (of `owner`) may hold `aliases`, and what it takes from whom.
    func aliasClaims(
        _ aliases: [ServiceAlias], share: ServiceShare?, name: String, owner: TokenDigest, state: State, now: Date
    ) -> AliasClaims {
        for (index, alias) in aliases.enumerated() {
            for other in aliases[(index + 1)...] {
                guard let host = Self.commonHost(alias, other) else { continue }
                return .refused(
                    .invalidRequest,
                    "services '\(alias)' and '\(other)' cannot both be aliases: a request with Host '\(host)' "
                        + "would match either; keep one")
            }
        }
        var released: [(name: String, alias: ServiceAlias)] = []
        for alias in aliases {
            for holder in holders(related: alias, except: name, in: state) {
                for theirs in holder.aliases {
                    let same = theirs == alias
                    let host = same ? nil : Self.commonHost(alias, theirs)
                    guard same || host != nil else { continue }
                    // Developers share a service under one token (a team's): another token
                    // joining with a broader match could take the traffic a developer's
                    // rule sends to their debugger.
                    if same, holder.owner == owner, let share, let shared = holder.share,
                        shared.serviceKey == share.serviceKey
                    {
                        // A developer who left (disconnected) no longer holds a match.
                        if holder.link != nil, shared.match == share.match {
                            return .refused(
                                .matchTaken,
                                "requests with \(share.match) on \(share.serviceKey) already go to tunnel "
                                    + "'\(holder.name)'; choose another --match-header value")
                        }
                        continue
                    }
                    if holder.owner == owner, isReleasable(holder, now: now) {
                        released.append((holder.name, theirs))
                        continue
                    }
                    if let host {
                        // Said without the holder: another token's tunnels are not listed.
                        return .refused(
                            .aliasTaken,
                            "service '\(alias)' cannot be told apart from '\(theirs)', which the relay already "
                                + "routes: a request with Host '\(host)' would match both; ask for another alias")
                    }
                    if holder.owner != owner {
                        let sharing =
                            share != nil && holder.share != nil
                            ? " (developers sharing a service use the same token)" : ""
                        return .refused(
                            .nameTaken,
                            "service '\(alias)' is routed to another token's tunnel\(keptNote)\(sharing); "
                                + "ask for another alias")
                    }
                    return .refused(.aliasTaken, "service '\(alias)' is already routed to tunnel '\(holder.name)'")
                }
            }
        }
        return .free(released)
    }

    /// An away name of the same token whose aliases and port its token's other names may take.
    private func isReleasable(_ entry: Entry, now: Date) -> Bool {
        guard let since = entry.phase.awaySince else { return false }
        return now.timeIntervalSince(since) >= Self.seconds(limits.reservation)
    }

    /// The tunnels other than `name` with an alias that one Host could match together
    /// with `alias`: of the same service, or of it with or without `-shadow` (Envoy's
    /// suffix for mirrored requests), by name.
    private func holders(related alias: ServiceAlias, except name: String, in state: State) -> [Entry] {
        let suffix = "-shadow"
        var services = [alias.service, alias.service + suffix]
        if alias.service.hasSuffix(suffix) { services.append(String(alias.service.dropLast(suffix.count))) }
        let names = Set(services.flatMap { state.aliasHolders[$0] ?? [] }).subtracting([name])
        return names.sorted().compactMap { state.entries[$0] }
    }

    /// A Host header, as in-cluster clients and mirrors write them, that both aliases
    /// match; nil when none does (or they are the same alias).
    static func commonHost(_ first: ServiceAlias, _ second: ServiceAlias) -> String? {
        guard first != second else { return nil }
        for alias in [first, second] {
            let service = alias.service
            let namespace = alias.namespace
            for host in [service, "\(service).\(namespace)", "\(service).\(namespace).svc"] {
                for candidate in [host, host + "-shadow"]
                where first.matches(host: candidate) && second.matches(host: candidate) {
                    return candidate
                }
            }
        }
        return nil
    }

    /// Rebuilds the index of alias holders by service, after the aliases changed.
    static func indexAliases(_ state: inout State) {
        var holders: [String: [String]] = [:]
        for entry in state.entries.values {
            for service in Set(entry.aliases.map(\.service)) { holders[service, default: []].append(entry.name) }
        }
        for service in holders.keys { holders[service]?.sort() }
        state.aliasHolders = holders
    }
}
