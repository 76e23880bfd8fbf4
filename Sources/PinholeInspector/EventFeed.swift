import NIOConcurrencyHelpers
import NIOCore
import PinholeCore

/// The page's live updates as server-sent events: `request` with a request's summary
/// each time it changes, `cleared` when the list was emptied. Changes come from every
/// event loop; they are gathered and sent together a few times a second, so a busy
/// agent costs the page a bounded number of writes, and the exchanges one locked insert.
/// When news is due, the feed asks (`due`) and writes only when told (`flush`): while
/// the page does not read, the ids wait here. Past `maxPending` of them, they are
/// dropped and the page is sent `hello` again, which has it load the list afresh.
final class EventFeed {
    private struct Pending {
        var ids = Set<Int>()
        var cleared = false
        /// Too much changed while the page was not reading: it reloads the list instead.
        var reload = false
        var scheduled = false
    }

    static let interval = TimeAmount.milliseconds(50)
    static let hello = "event: hello\ndata: {}\n\n"

    private let store: InspectorStore
    private let eventLoop: any EventLoop
    private let due: () -> Void
    private let send: (ByteBuffer) -> Void
    private let pending = NIOLockedValueBox(Pending())
    private let maxPending: Int
    private var listener: Int?

    init(
        store: InspectorStore, eventLoop: any EventLoop, maxPending: Int = 10_000, due: @escaping () -> Void,
        send: @escaping (ByteBuffer) -> Void
    ) {
        self.store = store
        self.maxPending = maxPending
        self.eventLoop = eventLoop
        self.due = due
        self.send = send
    }

    func start() {
        send(ByteBuffer(string: "retry: 1000\n" + Self.hello))
        let (pending, eventLoop, maxPending) = (self.pending, self.eventLoop, self.maxPending)
        let feed = NIOLoopBound(self, eventLoop: eventLoop)
        listener = store.observe { change in
            let schedule = pending.withLockedValue { pending -> Bool in
                switch change {
                case .updated where pending.reload:
                    break  // the page's reload will show it
                case .updated where pending.ids.count >= maxPending:
                    pending.ids.removeAll()
                    pending.reload = true
                case .updated(let id): pending.ids.insert(id)
                case .cleared:
                    pending.ids.removeAll()
                    pending.cleared = true
                }
                defer { pending.scheduled = true }
                return !pending.scheduled
            }
            if schedule { eventLoop.scheduleTask(in: Self.interval) { feed.value.announce() } }
        }
    }

    func stop() {
        if let listener { store.stopObserving(listener) }
        listener = nil
    }

    private func announce() {
        if listener != nil { due() }
    }

    /// Writes what changed since the last flush. Until then, changes gather without
    /// scheduling more work.
    func flush() {
        guard listener != nil else { return }
        let (ids, cleared, reload) = pending.withLockedValue { pending in
            defer { pending = Pending() }
            return (pending.ids.sorted(), pending.cleared, pending.reload)
        }
        guard !reload else {
            send(ByteBuffer(string: Self.hello))
            return
        }
        // Written as bytes, each summary straight after its event line: one buffer for all.
        var text: [UInt8] = []
        // Room for them all at once (a summary takes some 400 bytes): grown summary by
        // summary, the buffer was copied at each doubling, about a third of the feed's
        // samples in a profile with a page open.
        text.reserveCapacity(ids.count * 512)
        if cleared { text.append(ascii: "event: cleared\ndata: {}\n\n") }
        let now = NIODeadline.now()
        for (id, record) in zip(ids, store.records(ids, .withoutBodies)) {
            if let record {
                text.append(ascii: "event: request\ndata: ")
                InspectorJSON.summary(record, now: now).appendJSON(to: &text)
                text.append(ascii: "\n\n")
            } else {
                text.append(ascii: "event: removed\ndata: {\"id\":")
                text.append(decimal: id)
                text.append(ascii: "}\n\n")
            }
        }
        if !text.isEmpty { send(ByteBuffer(bytes: text)) }
    }
}
