import Foundation
import NIOCore
import Synchronization

/// The captured requests: a ring bounded by bytes, oldest first out. Exchanges on any
/// event loop publish into it, under its one lock when a request begins and when it
/// ends; listeners (the page's live updates) hear which request changed.
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

    /// A request still in flight: its record, behind a lock of its own. Only its exchange
    /// (on one event loop) changes it, and the page reads it now and then, so that lock is
    /// all but never contended; the store's lock, which every event loop's exchanges share,
    /// is taken only when a request begins and when it ends. With one lock for all, taken
    /// for each change and held while a finished record was encoded, the embedded relay's
    /// two event loops waited on each other in the kernel (futex waits in profiles).
    ///
    /// The store's lock is never held while a published slot's is taken: readers pick the
    /// slots out under the one, then read them under the other. (`begin` sets the id of a
    /// slot not yet in the index, which no one else can hold.) The reverse is allowed:
    /// `finish` writes a small record into the ring under both; a large one is encoded
    /// under its slot's lock only, holding up no one but a reader of that very record.
    /// A slot is one object, its record beside its lock (`Mutex`, one word): no pthread
    /// mutex to set up and destroy per request, as a lock box had. The index knows a slot
    /// by its request's id, which no other slot ever has.
    ///
    /// A finished slot lets go of its record as the ring takes it: the record holds the
    /// first piece of each body as a view of the connection's receive buffer, which that
    /// connection reuses for its next read only once no one else holds it. Held until
    /// the exchange was freed, it made each read of the app's answers allocate a new
    /// buffer.
    final class Slot: Sendable {
        /// Nil once finished: the ring has the record then.
        private let record: Mutex<CapturedRequest?>

        init(_ record: consuming CapturedRequest) {
            self.record = Mutex(record)
        }

        /// The record while in flight; nil once finished (read the ring then).
        var current: CapturedRequest? { record.withLock { $0 } }

        /// Changes the record in flight; a finished one stays as the ring has it.
        func change(_ body: (inout CapturedRequest) -> Void) {
            record.withLock { record in
                guard record != nil else { return }
                body(&record!)
            }
        }

        /// Finishes the record with `body`, and lets go of it: nothing changes it after.
        /// Readers wait on this lock meanwhile, and find it in the ring once it is let go.
        func finish<Result>(_ body: (inout CapturedRequest) -> Result?) -> Result? {
            record.withLock { record in
                guard var finished = record.take() else { return nil }
                return body(&finished)
            }
        }
    }

    /// What the index holds for one id.
    private enum Entry {
        /// In flight: its record is its slot's. `replayOf` is kept beside it, for
        /// `replays(of:)` to read without the slot's lock.
        case live(Slot, replayOf: Int?)
        /// Finished: its compact form starts at this position of the ring (see `RecordRing`),
        /// while it has not been written over.
        case stored(position: Int)
        /// Gone: pushed out before it finished, or too large for the ring.
        case dropped
    }

    private struct State {
        /// One entry per id, `oldest..<nextID`, oldest first.
        var entries = CircularBuffer<Entry>(initialCapacity: 1024)
        var oldest = 1
        var nextID = 1
        var ring: RecordRing
        /// The index's own bound: ids past it go even while in flight, so that a request
        /// held at a breakpoint does not keep the entries of everything after it.
        let maxEntries: Int
        var listeners: [Int: @Sendable (Change) -> Void] = [:]
        /// `listeners`' values, kept ready: every change hands them out.
        var listening: [@Sendable (Change) -> Void] = []

        /// The listeners to tell of a change: nil when there are none (no page open), so
        /// that a change retains nothing for them.
        var toTell: [@Sendable (Change) -> Void]? { listening.isEmpty ? nil : listening }
        var nextListener = 0

        func entry(_ id: Int) -> Entry? {
            let offset = id - oldest
            guard offset >= 0, offset < entries.count else { return nil }
            return entries[offset: offset]
        }

        /// Whether request `id` is still in the index and in flight. Its entry can only
        /// be its own slot: ids are never given twice, and a cleared index starts after
        /// the last one given.
        func isLive(_ id: Int) -> Bool {
            guard case .live = entry(id) else { return false }
            return true
        }

        /// Whether the entry at the front is gone: written over in the ring, or dropped.
        var frontIsGone: Bool {
            switch entries.first {
            case .stored(let position): return !ring.holds(position)
            case .dropped: return true
            case .live, nil: return false
            }
        }

        /// Lets go of the index's oldest entries that are gone, and of any past its bound.
        mutating func trim() {
            while frontIsGone || entries.count > maxEntries {
                entries.removeFirst()
                oldest += 1
            }
        }
    }

    public let limits: Limits
    /// Every event loop's exchanges take this lock as they begin and end. A `Mutex`
    /// spins a while before it sleeps, where a pthread mutex (`NIOLockedValueBox`) slept
    /// at once: the embedded relay's two loops, meeting here on two cores, each went to
    /// sleep in the kernel for a hold of well under a microsecond. The same holds for
    /// all state shared per request, each behind a `Mutex` for this reason: futex calls
    /// of the agent per 20,000 h2load requests went from 1924 to 1114 with this lock
    /// alone, and to 190 with the others.
    private let state: Mutex<State>
    /// How many listeners there are, read without the lock: a change to an in-flight
    /// record takes the lock only to tell them, and only when there are some.
    private let listenerCount = Atomic<Int>(0)
    /// Seconds since 1970 at the monotonic clock's zero, read once: a record's wall-clock
    /// time is its monotonic start plus this, rather than a clock read of its own.
    let wallClockOffset: Double

    public init(limits: Limits = Limits()) {
        self.limits = limits
        let ring = RecordRing(capacity: limits.totalBytes)
        // The smallest record takes more than 128 bytes of the ring.
        self.state = Mutex(State(ring: ring, maxEntries: max(1024, limits.totalBytes / 128)))
        self.wallClockOffset = Date().timeIntervalSince1970 - Double(NIODeadline.now().uptimeNanoseconds) / 1e9
    }

    /// The wall-clock time (seconds since 1970) of monotonic time `deadline`.
    func wallClock(at deadline: NIODeadline) -> Double {
        wallClockOffset + Double(deadline.uptimeNanoseconds) / 1e9
    }

    /// Adds `slot`'s record under the next id, and returns that id. The record is built by
    /// the caller, outside the lock that every event loop's exchanges share.
    func begin(_ slot: Slot, replayOf: Int?) -> Int {
        let (id, listeners) = state.withLock { state -> (Int, [@Sendable (Change) -> Void]?) in
            let id = state.nextID
            state.nextID += 1
            // Before the slot is in the index: no one else can reach it yet.
            slot.change { $0.id = id }
            state.entries.append(.live(slot, replayOf: replayOf))
            state.trim()
            return (id, state.toTell)
        }
        for listener in listeners ?? [] { listener(.updated(id: id)) }
        return id
    }

    /// Changes `slot`'s record, that of request `id`. A slot the index has let go of is
    /// changed all the same; a listener told of it finds the request gone.
    func update(_ slot: Slot, id: Int, _ change: (inout CapturedRequest) -> Void) {
        slot.change(change)
        tell(.updated(id: id))
    }

    /// Ends `slot`'s flight, that of request `id`: `change` finishes its record, which the
    /// ring then keeps in its compact form, pushing out what it writes over.
    ///
    /// A small record (most are: heads and a few bodies' bytes) is written straight into
    /// the ring under the store's lock, which saves an array, its copy and its freeing per
    /// request; written in place it takes well under a microsecond, short next to each
    /// event loop's time between requests. One that keeps larger bodies is encoded into an
    /// array first, outside the store's lock, so that no event loop waits while another
    /// writes out a MiB (see `Slot`).
    func finish(_ slot: Slot, id: Int, _ change: (inout CapturedRequest) -> Void) {
        let listeners = slot.finish { record -> [@Sendable (Change) -> Void]? in
            change(&record)
            return keep(record, id: id)
        }
        for listener in listeners ?? [] { listener(.updated(id: id)) }
    }

    /// Writes finished `record`, that of request `id`, into the ring (see `finish`), and
    /// returns the listeners to tell. A function of its own, so that the closures below
    /// read a borrowed `record`: reading the slot's `inout` one from a closure made a copy
    /// of the whole record (and its freeing) per request.
    private func keep(_ record: CapturedRequest, id: Int) -> [@Sendable (Change) -> Void]? {
        let size = record.encodedSize
        let encoded = size > Self.largestWrittenUnderLock ? record.encoded() : nil
        return state.withLock { state -> [@Sendable (Change) -> Void]? in
            guard state.isLive(id) else { return nil }
            let position =
                if let encoded { state.ring.append(encoded) } else {
                    state.ring.append(length: size) { record.encode(into: $0) }
                }
            state.entries[offset: id - state.oldest] = position.map { .stored(position: $0) } ?? .dropped
            state.trim()
            return state.toTell
        }
    }

    /// The largest record `finish` writes into the ring under the store's lock.
    static let largestWrittenUnderLock = 4096

    /// Tells the listeners, if any, of `change`.
    private func tell(_ change: Change) {
        guard listenerCount.load(ordering: .relaxed) > 0 else { return }
        for listener in state.withLock({ $0.listening }) { listener(change) }
    }

    /// What a reader takes of each finished record.
    public enum Extent: Sendable {
        /// Everything: the details, a replay, an export.
        case whole
        /// Its bodies' sizes, not their bytes: a summary in the list or the live feed,
        /// copied under the store's lock at a fraction of the cost. Such a record is for a
        /// summary only: its bodies look cut to nothing (`isTruncated`).
        case withoutBodies
    }

    /// The record of `id`, if it is still kept. A finished one's bytes are copied out of
    /// the ring under the lock (never a view: that would make the ring's next write copy
    /// it whole) and read outside it.
    public func record(_ id: Int, _ extent: Extent = .whole) -> CapturedRequest? {
        records([id], extent)[0]
    }

    /// The records of `ids`, in their order, nil for those no longer kept: taken out a few
    /// hundred per hold of the lock, the finished ones' bytes one after the other into one
    /// buffer (the live feed asks for hundreds at once on a busy agent), and read outside
    /// it. Every event loop takes this lock as a request begins and ends, so no hold takes
    /// all of a feed's batch, which can be thousands.
    public func records(_ ids: [Int], _ extent: Extent = .whole) -> [CapturedRequest?] {
        var records: [CapturedRequest?] = []
        records.reserveCapacity(ids.count)
        for start in stride(from: 0, to: ids.count, by: Self.recordsPerHold) {
            let chunk = ids[start..<min(start + Self.recordsPerHold, ids.count)]
            let (taken, copied) = state.withLock { state -> ([Taken?], ByteBuffer) in
                var copied = ByteBuffer()
                return (chunk.map { Self.take($0, of: state, extent, into: &copied) }, copied)
            }
            records += taken.map { $0.flatMap { read($0, from: copied, extent) } }
        }
        return records
    }

    /// How many records `records` takes per hold of the store's lock.
    static let recordsPerHold = 128

    /// All records still kept, oldest first.
    public func all(_ extent: Extent = .whole) -> [CapturedRequest] {
        newest(Int.max, extent)
    }

    /// The newest `count` records, oldest first, taken and read as `records` does.
    public func newest(_ count: Int, _ extent: Extent = .whole) -> [CapturedRequest] {
        let (taken, copied) = state.withLock { state -> ([Taken], ByteBuffer) in
            var taken: [Taken] = []
            var copied = ByteBuffer()
            for offset in (0..<state.entries.count).reversed() {
                guard taken.count < count else { break }
                if let entry = Self.take(state.oldest + offset, of: state, extent, into: &copied) {
                    taken.append(entry)
                }
            }
            return (taken, copied)
        }
        return taken.reversed().compactMap { read($0, from: copied, extent) }
    }

    /// Takes request `id` out under the store's lock: an in-flight one's slot, or a copy of
    /// a finished one's bytes, appended to `copied`; nil if it is no longer kept.
    private static func take(_ id: Int, of state: State, _ extent: Extent, into copied: inout ByteBuffer) -> Taken? {
        switch state.entry(id) {
        case .live(let slot, _): return .live(slot, id: id)
        case .stored(let position):
            let start = copied.writerIndex
            let copiedWhole =
                switch extent {
                case .whole: state.ring.copy(at: position, into: &copied)
                case .withoutBodies: CapturedRequest.copyWithoutBodies(of: state.ring, at: position, into: &copied)
                }
            return copiedWhole ? .copied(at: start) : nil
        case .dropped, nil: return nil
        }
    }

    /// Reads what `take` took, outside the store's lock: a slot under its own.
    private func read(_ taken: Taken, from copied: ByteBuffer, _ extent: Extent) -> CapturedRequest? {
        switch taken {
        // A slot finished meanwhile: its record is in the ring now (or gone), never in
        // flight again.
        case .live(let slot, let id): return slot.current ?? record(id, extent)
        case .copied(let start):
            var bytes = copied
            bytes.moveReaderIndex(to: start)
            return CapturedRequest.decode(from: &bytes)
        }
    }

    /// A record as it is taken out under the lock: to be read outside it.
    private enum Taken {
        /// In flight: read under its own lock, once the store's is let go.
        case live(Slot, id: Int)
        /// Where its bytes start in the copy.
        case copied(at: Int)
    }

    /// The ids of the kept replays of request `id`, read without decoding the records.
    public func replays(of id: Int) -> [Int] {
        state.withLock { state in
            var found: [Int] = []
            for (offset, entry) in state.entries.enumerated() {
                switch entry {
                case .live(_, let replayOf) where replayOf == id: found.append(state.oldest + offset)
                case .stored(let position)
                where state.ring.integer(at: position, offset: CapturedRequest.replayOfOffset, as: Int64.self)
                    == Int64(id):
                    found.append(state.oldest + offset)
                default: break
                }
            }
            return found
        }
    }

    /// What the ring holds now, by its own count.
    public var retainedBytes: Int { state.withLock { $0.ring.usedBytes } }

    public func clear() {
        let listeners = state.withLock { state -> [@Sendable (Change) -> Void] in
            state.entries.removeAll(keepingCapacity: true)
            state.ring.removeAll()
            state.oldest = state.nextID
            return state.listening
        }
        for listener in listeners { listener(.cleared) }
    }

    /// Calls `listener` after each change, on the changing thread, until stopped.
    public func observe(_ listener: @escaping @Sendable (Change) -> Void) -> Int {
        state.withLock { state in
            state.nextListener += 1
            state.listeners[state.nextListener] = listener
            state.listening = Array(state.listeners.values)
            listenerCount.store(state.listening.count, ordering: .relaxed)
            return state.nextListener
        }
    }

    public func stopObserving(_ token: Int) {
        state.withLock { state in
            state.listeners[token] = nil
            state.listening = Array(state.listeners.values)
            listenerCount.store(state.listening.count, ordering: .relaxed)
        }
    }
}
