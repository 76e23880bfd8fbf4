import NIOCore
import Synchronization

/// Requests that wait for the app's answer, and one announcement for each that has
/// waited `threshold`: what lets the request log show a request held at a breakpoint
/// while it is held, not only once it ends.
///
/// Per request this costs two short lock holds (`begin`, `end`) and no timer: one sweep,
/// scheduled only while requests wait, finds those due.
public final class RequestWatch: Sendable {
    /// A request announced as waiting.
    public struct Waiting: Sendable, Equatable {
        /// Also set as the finished request's `ExchangeRecord.waitingID`.
        public var id: Int
        public var method: String
        public var path: String
        public var startedAt: NIODeadline

        public init(id: Int, method: String, path: String, startedAt: NIODeadline) {
            self.id = id
            self.method = method
            self.path = path
            self.startedAt = startedAt
        }
    }

    /// What `begin` returns, for `end`.
    public struct Ticket: Sendable, Equatable {
        fileprivate let id: Int
    }

    private struct Entry {
        let method: String
        let path: String
        let startedAt: NIODeadline
        var announced = false
    }

    private struct State {
        var entries: [Int: Entry] = [:]
        var lastID = 0
        var sweepScheduled = false
    }

    public let threshold: TimeAmount
    /// Sweeps come at most this often, however many requests arrive.
    private let sweepInterval: TimeAmount
    private let loop: any EventLoop
    private let announce: @Sendable (Waiting) -> Void
    /// Taken for every request, from every event loop: a `Mutex` (see `InspectorStore.state`).
    private let state = Mutex(State())

    /// `announce` is called on `loop` for each request that waited `threshold`.
    public init(
        threshold: TimeAmount = .seconds(1), on loop: any EventLoop,
        announce: @escaping @Sendable (Waiting) -> Void
    ) {
        self.threshold = threshold
        self.sweepInterval = .nanoseconds(max(threshold.nanoseconds / 4, 1_000_000))
        self.loop = loop
        self.announce = announce
    }

    /// A request began waiting for its answer (`startedAt`: by `loop`'s clock, which for
    /// any loop but a test's is `NIODeadline.now()`).
    public func begin(method: String, path: String, startedAt: NIODeadline) -> Ticket {
        let (id, schedule) = state.withLock { state -> (Int, Bool) in
            state.lastID += 1
            state.entries[state.lastID] = Entry(method: method, path: path, startedAt: startedAt)
            defer { state.sweepScheduled = true }
            return (state.lastID, !state.sweepScheduled)
        }
        if schedule { scheduleSweep(at: startedAt + threshold) }
        return Ticket(id: id)
    }

    /// The request stopped waiting (its answer began, or it ended). Returns the id it
    /// was announced with, if it was.
    public func end(_ ticket: Ticket) -> Int? {
        let entry = state.withLock { $0.entries.removeValue(forKey: ticket.id) }
        return entry?.announced == true ? ticket.id : nil
    }

    /// Requests waiting now, announced or not.
    public var count: Int { state.withLock { $0.entries.count } }

    private func scheduleSweep(at deadline: NIODeadline) {
        loop.scheduleTask(deadline: deadline) { self.sweep() }
    }

    private func sweep() {
        let now = loop.now
        let (due, next) = state.withLock { state -> ([Waiting], NIODeadline?) in
            var due: [Waiting] = []
            var earliest: NIODeadline?
            for index in state.entries.indices {
                let (id, entry) = state.entries[index]
                if entry.announced { continue }
                if now - entry.startedAt >= threshold {
                    state.entries.values[index].announced = true
                    due.append(Waiting(id: id, method: entry.method, path: entry.path, startedAt: entry.startedAt))
                } else if earliest.map({ entry.startedAt < $0 }) ?? true {
                    earliest = entry.startedAt
                }
            }
            guard let earliest else {
                state.sweepScheduled = false
                return (due, nil)
            }
            return (due, max(earliest + threshold, now + sweepInterval))
        }
        for waiting in due.sorted(by: { $0.id < $1.id }) { announce(waiting) }
        if let next { scheduleSweep(at: next) }
    }
}
