import Foundation
import NIOCore
import PinholeCore

// The registry across restarts: what the file keeps, and what a start takes back from it.

extension TunnelRegistry {
    /// What a start took back from the registry file, for the log.
    struct Restored: Equatable {
        var names = 0
        /// Names of tokens this relay no longer accepts, forgotten.
        var ownerGone = 0
        /// Ports outside this start's `--tunnel-ports` (or with `--domain`), dropped.
        var portsDropped = 0
        /// Names unused for `--forget-after`, forgotten.
        var unused = 0
    }

    /// The records the registry file should hold for `entries`.
    static func records(of entries: [String: Entry], now: Date) -> [RegistryRecord] {
        entries.values.map { entry in
            RegistryRecord(
                name: entry.name, owner: entry.owner.hex, port: entry.port, aliases: entry.aliases.map(\.description),
                share: entry.share, lastUsed: entry.phase.isLive ? now : entry.lastUsed, connected: entry.phase.isLive)
        }
    }

    /// Queues the state to be written to the registry file, if there is one. Called under
    /// the lock, which it holds only to copy the entries (copy on write: no copy at all).
    func save(_ state: State, now: Date) {
        guard let file else { return }
        let entries = state.entries
        file.schedule { Self.records(of: entries, now: now) }
    }

    /// Succeeds once every change so far is on disk.
    func flushed(on loop: any EventLoop) -> EventLoopFuture<Void> {
        file?.flushed(on: loop) ?? loop.makeSucceededVoidFuture()
    }

    /// Takes back the names in `records`, all away: those of tokens in `owners` only, and
    /// not those unused for `forgetAfter`. A record the file should not hold (a name or
    /// alias that is not valid, a name twice) is an error naming it.
    func restore(
        _ records: [RegistryRecord], owners: Set<TokenDigest>, now: Date = Date()
    ) throws(RelayError)
        -> Restored
    {
        var restored = Restored()
        var entries: [String: Entry] = [:]
        var nameOfPort: [Int: String] = [:]
        let problem = { (record: RegistryRecord, what: String) -> RelayError in
            .configuration(
                "the registry file \(self.file?.path ?? "") has a tunnel '\(UntrustedText.escaped(record.name, limit: 80))' "
                    + "\(what); repair the file, or move it away to start with no names kept")
        }
        for record in records {
            if DNS1123.labelViolation(record.name) != nil { throw problem(record, "whose name is not valid") }
            guard entries[record.name] == nil else { throw problem(record, "twice") }
            let owner = TokenDigest(hex: record.owner)
            guard owners.contains(owner) else {
                restored.ownerGone += 1
                continue
            }
            var aliases: [ServiceAlias] = []
            for text in record.aliases {
                guard let alias = try? ServiceAlias(description: text) else {
                    throw problem(record, "with an alias that is not valid")
                }
                aliases.append(alias)
            }
            // Killed while connected: it was in use until then, which was at most now.
            let lastUsed = record.connected ? now : record.lastUsed
            var port = record.port
            if let kept = port, !(tunnelPorts?.contains(kept) ?? false) || nameOfPort[kept] != nil {
                restored.portsDropped += 1
                port = nil
            }
            if let port { nameOfPort[port] = record.name }
            entries[record.name] = Entry(
                name: record.name, owner: owner, aliases: aliases, share: record.share, port: port,
                phase: .away(since: lastUsed), lastUsed: lastUsed)
            restored.names += 1
        }
        state.withLock { state in
            state.entries = entries
            state.nameOfPort = nameOfPort
            forgetUnused(in: &state, now: now)
            Self.indexAliases(&state)
            restored.unused = restored.names - state.entries.count
            restored.names = state.entries.count
        }
        return restored
    }

    /// Writes the registry file now (at start, proving it can be written; at shutdown).
    func writeNow(now: Date = Date()) throws(RelayError) {
        try file?.writeNow(Self.records(of: state.withLock { $0.entries }, now: now))
    }
}
