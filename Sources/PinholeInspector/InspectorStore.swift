import Foundation
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

    /// One record and what it counts for in the ring. A class, so records are changed
    /// in place, the ring moves pointers when it grows, and an exchange holds its own
    /// slot instead of looking it up. Kept small: the ring holds one per record, and
    /// pushing the oldest out touches it cold.
    // Unchecked: `record` and `size` are reached only under the store's lock (`state`).
    final class Slot: @unchecked Sendable {
        var record: CapturedRequest
        var size: Int

        init(_ record: CapturedRequest) {
            self.record = record
            self.size = record.approximateBytes
        }
    }

    private struct State {
        /// Ids are handed out in order, so the ring holds ids `oldest..<nextID`.
        var slots = CircularBuffer<Slot>(initialCapacity: 1024)
        var oldest = 1
        var nextID = 1
        var bytes = 0
        var listeners: [Int: @Sendable (Change) -> Void] = [:]
        /// `listeners`' values, kept ready: every change hands them out.
        var listening: [@Sendable (Change) -> Void] = []
        var nextListener = 0

        func slot(_ id: Int) -> Slot? {
            let offset = id - oldest
            guard offset >= 0, offset < slots.count else { return nil }
            return slots[offset: offset]
        }

        /// Whether `slot` is still in the ring (not pushed out, not cleared).
        func holds(_ slot: Slot) -> Bool {
            slot.record.id >= oldest && slot.record.id < nextID
        }

        /// Drops the oldest records while over `limit`; the newest always stays.
        mutating func evict(limit: Int) {
            while bytes > limit, slots.count > 1 {
                bytes -= slots.removeFirst().size
                oldest += 1
            }
        }
    }

    public let limits: Limits
    private let state = NIOLockedValueBox(State())
    /// Seconds since 1970 at the monotonic clock's zero, read once: a record's wall-clock
    /// time is its monotonic start plus this, rather than a clock read of its own.
    let wallClockOffset: Double

    public init(limits: Limits = Limits()) {
        self.limits = limits
        self.wallClockOffset = Date().timeIntervalSince1970 - Double(NIODeadline.now().uptimeNanoseconds) / 1e9
    }

    /// The wall-clock time (seconds since 1970) of monotonic time `deadline`.
    func wallClock(at deadline: NIODeadline) -> Double {
        wallClockOffset + Double(deadline.uptimeNanoseconds) / 1e9
    }

    /// Adds `slot`'s record under the next id, and returns that id. The record is built by
    /// the caller, outside the lock that every event loop's exchanges share.
    func begin(_ slot: Slot) -> Int {
        let (id, listeners) = state.withLockedValue { state -> (Int, [@Sendable (Change) -> Void]) in
            let id = state.nextID
            state.nextID += 1
            slot.record.id = id
            state.slots.append(slot)
            state.bytes += slot.size
            state.evict(limit: limits.totalBytes)
            return (id, state.listening)
        }
        for listener in listeners { listener(.updated(id: id)) }
        return id
    }

    /// Changes `slot`'s record, if it is still in the ring.
    func update(_ slot: Slot, _ change: (inout CapturedRequest) -> Void) {
        let (id, listeners) = state.withLockedValue { state -> (Int, [@Sendable (Change) -> Void]) in
            guard state.holds(slot) else { return (0, []) }
            change(&slot.record)
            let size = slot.record.approximateBytes
            state.bytes += size - slot.size
            slot.size = size
            state.evict(limit: limits.totalBytes)
            return (slot.record.id, state.listening)
        }
        for listener in listeners { listener(.updated(id: id)) }
    }

    public func record(_ id: Int) -> CapturedRequest? {
        state.withLockedValue { $0.slot(id)?.record }
    }

    /// All records still kept, oldest first.
    public func all() -> [CapturedRequest] {
        state.withLockedValue { state in state.slots.map(\.record) }
    }

    /// The newest `count` records, oldest first.
    public func newest(_ count: Int) -> [CapturedRequest] {
        state.withLockedValue { state in state.slots.suffix(count).map(\.record) }
    }

    /// What the ring holds now, by its own count.
    public var retainedBytes: Int { state.withLockedValue { $0.bytes } }

    public func clear() {
        let listeners = state.withLockedValue { state -> [@Sendable (Change) -> Void] in
            state.slots.removeAll(keepingCapacity: true)
            state.bytes = 0
            state.oldest = state.nextID
            return state.listening
        }
        for listener in listeners { listener(.cleared) }
    }

    /// Calls `listener` after each change, on the changing thread, until stopped.
    public func observe(_ listener: @escaping @Sendable (Change) -> Void) -> Int {
        state.withLockedValue { state in
            state.nextListener += 1
            state.listeners[state.nextListener] = listener
            state.listening = Array(state.listeners.values)
            return state.nextListener
        }
    }

    public func stopObserving(_ token: Int) {
        state.withLockedValue { state in
            state.listeners[token] = nil
            state.listening = Array(state.listeners.values)
        }
    }
}
