import NIOCore
import Synchronization

/// Caps on public requests in flight, shared by every public connection of a relay:
/// per client address group (an IPv4 address, an IPv6 /64) and per tunnel. A tunnel
/// carries a limited number of streams; without these, one client could take them
/// all (1,100 stalled uploads filled a tunnel's 1,024 and locked everyone out).
///
/// A request over a cap waits in line for `waitLimit`, then is answered 503 naming
/// the cap. The line is per tunnel, first come first served among those a freed place
/// lets in, and no longer than the tunnel's cap: past that, the answer is at once.
public final class InFlightLimits: Sendable {
    public struct Caps: Sendable, Equatable {
        /// Requests in flight from one address group. Generous: a cluster's sidecars may
        /// all share one NAT address.
        public var perAddress: Int
        /// Requests in flight through one tunnel: the agent's streams (1,024) at most, so
        /// no request waits unseen inside the tunnel.
        public var perTunnel: Int
        /// How long a request over a cap waits for a place before it is answered 503.
        public var waitLimit: TimeAmount
        /// Whether `perTunnel` applies. The embedded relay serves one app, so it counts
        /// per address only (and `perTunnel` just bounds the line).
        public var countsTunnels: Bool

        public init(
            perAddress: Int = 256, perTunnel: Int = 1024, waitLimit: TimeAmount = .seconds(5),
            countsTunnels: Bool = true
        ) {
            self.perAddress = perAddress
            self.perTunnel = perTunnel
            self.waitLimit = waitLimit
            self.countsTunnels = countsTunnels
        }
    }

    /// Which cap a request met.
    public enum Limit: Sendable, Equatable {
        case perAddress(Int, AddressGroup)
        case perTunnel(Int)
    }

    /// The place one request holds; given back with `release`.
    public struct Slot: Sendable, Equatable {
        let address: AddressGroup
        let tunnel: ObjectIdentifier?
    }

    /// A request waiting in line.
    public struct Ticket: Sendable, Equatable {
        let id: Int
        let tunnel: ObjectIdentifier?
    }

    public enum Admission {
        case admitted(Slot)
        /// Over `limit`; with a ticket, waiting in line: `wake` will be called with the
        /// slot when one frees up (unless `cancel` comes first).
        case waiting(Ticket, Limit)
        /// Over `limit`, and the line is full.
        case refused(Limit)
    }

    private struct Waiter {
        let id: Int
        let address: AddressGroup
        let wake: @Sendable (Slot) -> Void
    }

    private struct State {
        var byAddress: [AddressGroup: Int] = [:]
        var byTunnel: [ObjectIdentifier: Int] = [:]
        var lines: [ObjectIdentifier?: [Waiter]] = [:]
        var nextTicket = 0
    }

    public let caps: Caps
    /// Taken for every request, from every event loop: a `Mutex` (see `InspectorStore.state`).
    private let state = Mutex(State())

    public init(caps: Caps = Caps()) {
        precondition(caps.perAddress > 0 && caps.perTunnel > 0)
        self.caps = caps
    }

    /// Takes a place for a request from `address` through `tunnel` (nil: a target that
    /// is not a tunnel, counted per address only), or puts it in line. `wake` is made only
    /// for a request that goes in line: most get a place at once, and a closure made for
    /// each of them (it is kept, so its captures go on the heap) showed in profiles. It is
    /// made under this object's lock: the expression must only build the closure, never
    /// take a lock or call back in.
    public func admit(
        address: AddressGroup, tunnel: ObjectIdentifier?, wake: @autoclosure () -> @Sendable (Slot) -> Void
    ) -> Admission {
        let tunnel = caps.countsTunnels ? tunnel : nil
        return state.withLock { state in
            // Those in line are waiting for a place this one could not get either: a
            // freed place goes to them first (see `release`).
            if let slot = Self.take(address: address, tunnel: tunnel, caps: caps, &state) {
                return .admitted(slot)
            }
            let limit = Self.limitMet(address: address, tunnel: tunnel, caps: caps, state)
            guard state.lines[tunnel, default: []].count < caps.perTunnel else { return .refused(limit) }
            state.nextTicket += 1
            state.lines[tunnel, default: []].append(Waiter(id: state.nextTicket, address: address, wake: wake()))
            return .waiting(Ticket(id: state.nextTicket, tunnel: tunnel), limit)
        }
    }

    /// Gives a place back, and hands it on to the first request in line that it lets in.
    public func release(_ slot: Slot) {
        let woken: [(Waiter, Slot)] = state.withLock { state in
            state.byAddress[slot.address, default: 1] -= 1
            if state.byAddress[slot.address] == 0 { state.byAddress[slot.address] = nil }
            if let tunnel = slot.tunnel {
                state.byTunnel[tunnel, default: 1] -= 1
                if state.byTunnel[tunnel] == 0 { state.byTunnel[tunnel] = nil }
            }
            guard var line = state.lines[slot.tunnel], !line.isEmpty else { return [] }
            var woken: [(Waiter, Slot)] = []
            var index = 0
            // Those whose own address is at its cap stay in line; the next one goes.
            while index < line.count {
                guard let granted = Self.take(address: line[index].address, tunnel: slot.tunnel, caps: caps, &state)
                else {
                    if let tunnel = slot.tunnel, state.byTunnel[tunnel, default: 0] >= caps.perTunnel { break }
                    index += 1
                    continue
                }
                woken.append((line.remove(at: index), granted))
            }
            state.lines[slot.tunnel] = line.isEmpty ? nil : line
            return woken
        }
        for (waiter, granted) in woken { waiter.wake(granted) }
    }

    /// Takes a request out of line. False if it was already let in: its `wake` is then
    /// on its way, and the slot it brings must be released.
    @discardableResult
    public func cancel(_ ticket: Ticket) -> Bool {
        state.withLock { state in
            guard var line = state.lines[ticket.tunnel], let index = line.firstIndex(where: { $0.id == ticket.id })
            else { return false }
            line.remove(at: index)
            state.lines[ticket.tunnel] = line.isEmpty ? nil : line
            return true
        }
    }

    /// Requests in flight from `address` now (for tests and logs).
    public func inFlight(from address: AddressGroup) -> Int {
        state.withLock { $0.byAddress[address] ?? 0 }
    }

    private static func take(
        address: AddressGroup, tunnel: ObjectIdentifier?, caps: Caps, _ state: inout State
    ) -> Slot? {
        guard state.byAddress[address, default: 0] < caps.perAddress else { return nil }
        if let tunnel {
            guard state.byTunnel[tunnel, default: 0] < caps.perTunnel else { return nil }
            state.byTunnel[tunnel, default: 0] += 1
        }
        state.byAddress[address, default: 0] += 1
        return Slot(address: address, tunnel: tunnel)
    }

    private static func limitMet(address: AddressGroup, tunnel: ObjectIdentifier?, caps: Caps, _ state: State) -> Limit
    {
        if let tunnel, state.byTunnel[tunnel, default: 0] >= caps.perTunnel { return .perTunnel(caps.perTunnel) }
        return .perAddress(caps.perAddress, address)
    }
}
