import NIOConcurrencyHelpers
import NIOCore

/// Caps on open connections, shared by the listeners of one kind (the relay's public
/// listeners together, its agent listener alone): in all, and per client address group
/// (an IPv4 address, an IPv6 /64). Every connection costs a file descriptor and some
/// memory before it says anything; without caps, one client could take all of the
/// process's descriptors, and then no agent could connect. A connection over a cap is
/// closed at once, before anything is read from it.
public final class ConnectionLimits: Sendable {
    public struct Caps: Sendable, Equatable {
        public var total: Int
        public var perAddress: Int

        public init(total: Int, perAddress: Int) {
            self.total = total
            self.perAddress = perAddress
        }

        /// The relay's public listeners: generous per address, because a cluster's
        /// sidecars may all share one NAT address and keep pools of idle connections.
        public static let publicDefault = Caps(total: 8_192, perAddress: 2_048)
        /// The relay's agent listener: an agent holds one connection (two while it
        /// reconnects); a few hundred developers may share an office's address.
        public static let agentDefault = Caps(total: 2_048, perAddress: 256)
    }

    /// Which cap a connection met.
    public enum Limit: Sendable, Equatable, CustomStringConvertible {
        case total(Int)
        case perAddress(Int, AddressGroup)

        public var description: String {
            switch self {
            case .total(let cap): return "\(cap) connections in all"
            case .perAddress(let cap, let group): return "\(cap) connections from \(group)"
            }
        }
    }

    /// A connection over a cap, as the error that refuses it.
    public struct Refused: Error, Sendable, Equatable, CustomStringConvertible {
        public let limit: Limit
        /// The flag that sets the cap met.
        public let flag: String

        public var description: String { "connection refused: already \(limit) (\(flag))" }
    }

    private struct State {
        var total = 0
        var byAddress: [AddressGroup: Int] = [:]
    }

    public let caps: Caps
    /// The flags that set `caps.total` and `caps.perAddress`, for the refusal's words.
    private let flags: (total: String, perAddress: String)
    private let state = NIOLockedValueBox(State())

    public init(caps: Caps, totalFlag: String, perAddressFlag: String) {
        precondition(caps.total > 0 && caps.perAddress > 0)
        self.caps = caps
        self.flags = (totalFlag, perAddressFlag)
    }

    /// Counts a new connection from `address`, or refuses it. An admitted connection is
    /// given back with `release`. (The table holds only addresses with connections open,
    /// so it is never larger than `caps.total`.)
    public func admit(_ address: AddressGroup) -> Result<Void, Refused> {
        state.withLockedValue { state in
            guard state.total < caps.total else {
                return .failure(Refused(limit: .total(caps.total), flag: flags.total))
            }
            guard state.byAddress[address, default: 0] < caps.perAddress else {
                return .failure(Refused(limit: .perAddress(caps.perAddress, address), flag: flags.perAddress))
            }
            state.total += 1
            state.byAddress[address, default: 0] += 1
            return .success(())
        }
    }

    public func release(_ address: AddressGroup) {
        state.withLockedValue { state in
            state.total -= 1
            state.byAddress[address, default: 1] -= 1
            if state.byAddress[address] == 0 { state.byAddress[address] = nil }
        }
    }

    /// Connections open now: in all, and from `address` (for tests and logs).
    public var open: Int { state.withLockedValue { $0.total } }
    public func open(from address: AddressGroup) -> Int { state.withLockedValue { $0.byAddress[address] ?? 0 } }

    /// Counts `channel`, a connection just accepted, until it closes; throws `Refused`
    /// (so the bootstrap closes it at once) when it is over a cap.
    public func count(_ channel: any Channel) throws(Refused) {
        let address = AddressGroup(channel.remoteAddress)
        if case .failure(let refused) = admit(address) { throw refused }
        channel.closeFuture.whenComplete { [self] _ in release(address) }
    }
}
