import NIOConcurrencyHelpers
import NIOCore

/// The captured requests: a ring bounded by bytes, oldest first out. Exchanges on any
/// event loop publish into it under one lock, a few times per request; listeners (the
/// page's live updates) hear which request changed.
public final class InspectorStore: Sendable {
    /// What a listener hears.
    public enum Change: Sendable {
        case updated(id: Int)
        case cleared
    }

    public struct Limits: Sendable {
        /// How much of each body is kept; bytes beyond are counted, not kept.
        public var bodyBytes: Int
        /// How much all records together may take before the oldest go.
        public var totalBytes: Int

        public init(bodyBytes: Int = 1 << 20, totalBytes: Int = 64 << 20) {
            self.bodyBytes = bodyBytes
            self.totalBytes = totalBytes
        }
    }

    private struct State {
        var records: [Int: CapturedRequest] = [:]
        /// Ids are handed out in order, so the ring is the id range `oldest..<nextID`.
        var oldest = 1
        var nextID = 1
        var bytes = 0
        var sizes: [Int: Int] = [:]
        var listeners: [Int: @Sendable (Change) -> Void] = [:]
        var nextListener = 0
    }

    public let limits: Limits
    private let state = NIOLockedValueBox(State())

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Adds a new record and returns its id.
    func begin(_ make: (Int) -> CapturedRequest) -> Int {
        let (id, listeners) = state.withLockedValue { state -> (Int, [@Sendable (Change) -> Void]) in
            let id = state.nextID
            state.nextID += 1
            let record = make(id)
            state.records[id] = record
            Self.account(&state, id: id, size: record.approximateBytes, limit: limits.totalBytes)
            return (id, Array(state.listeners.values))
        }
        for listener in listeners { listener(.updated(id: id)) }
        return id
    }

    /// Changes a record, if it is still in the ring.
    func update(_ id: Int, _ change: (inout CapturedRequest) -> Void) {
        let listeners = state.withLockedValue { state -> [@Sendable (Change) -> Void] in
            guard state.records[id] != nil else { return [] }
            change(&state.records[id]!)
            Self.account(&state, id: id, size: state.records[id]!.approximateBytes, limit: limits.totalBytes)
            return Array(state.listeners.values)
        }
        for listener in listeners { listener(.updated(id: id)) }
    }

    private static func account(_ state: inout State, id: Int, size: Int, limit: Int) {
        state.bytes += size - (state.sizes.updateValue(size, forKey: id) ?? 0)
        // The newest record always stays, even when it alone is over the limit.
        while state.bytes > limit, state.oldest < id {
            let victim = state.oldest
            state.oldest += 1
            state.records[victim] = nil
            state.bytes -= state.sizes.removeValue(forKey: victim) ?? 0
        }
    }

    public func record(_ id: Int) -> CapturedRequest? {
        state.withLockedValue { $0.records[id] }
    }

    /// All records still kept, oldest first.
    public func all() -> [CapturedRequest] {
        state.withLockedValue { state in (state.oldest..<state.nextID).compactMap { state.records[$0] } }
    }

    /// What the ring holds now, by its own count.
    public var retainedBytes: Int { state.withLockedValue { $0.bytes } }

    public func clear() {
        let listeners = state.withLockedValue { state -> [@Sendable (Change) -> Void] in
            state.records.removeAll()
            state.sizes.removeAll()
            state.bytes = 0
            state.oldest = state.nextID
            return Array(state.listeners.values)
        }
        for listener in listeners { listener(.cleared) }
    }

    /// Calls `listener` after each change, on the changing thread, until removed.
    public func observe(_ listener: @escaping @Sendable (Change) -> Void) -> Int {
        state.withLockedValue { state in
            state.nextListener += 1
            state.listeners[state.nextListener] = listener
            return state.nextListener
        }
    }

    public func stopObserving(_ token: Int) {
        state.withLockedValue { _ = $0.listeners.removeValue(forKey: token) }
    }
}
