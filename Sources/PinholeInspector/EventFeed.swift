import NIOConcurrencyHelpers
import NIOCore

/// The page's live updates as server-sent events: `request` with a request's summary
/// each time it changes, `cleared` when the list was emptied. Changes come from every
/// event loop; they are gathered and sent together a few times a second, so a busy
/// agent costs the page a bounded number of writes, and the exchanges one locked insert.
/// When news is due, the feed asks (`due`) and writes only when told (`flush`): while
/// the page does not read, the ids wait here, at most one per kept request.
final class EventFeed {
    private struct Pending {
        var ids = Set<Int>()
        var cleared = false
        var scheduled = false
    }

    static let interval = TimeAmount.milliseconds(50)

    private let store: InspectorStore
    private let eventLoop: any EventLoop
    private let due: () -> Void
    private let send: (String) -> Void
    private let pending = NIOLockedValueBox(Pending())
    private var listener: Int?

    init(
        store: InspectorStore, eventLoop: any EventLoop, due: @escaping () -> Void,
        send: @escaping (String) -> Void
    ) {
        self.store = store
        self.eventLoop = eventLoop
        self.due = due
        self.send = send
    }

    func start() {
        send("retry: 1000\nevent: hello\ndata: {}\n\n")
        let (pending, eventLoop) = (self.pending, self.eventLoop)
        let feed = NIOLoopBound(self, eventLoop: eventLoop)
        listener = store.observe { change in
            let schedule = pending.withLockedValue { pending -> Bool in
                switch change {
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
        let (ids, cleared) = pending.withLockedValue { pending in
            defer { pending = Pending() }
            return (pending.ids.sorted(), pending.cleared)
        }
        var text = cleared ? "event: cleared\ndata: {}\n\n" : ""
        let now = NIODeadline.now()
        for id in ids {
            if let record = store.record(id) {
                text += "event: request\ndata: \(InspectorJSON.summary(record, now: now).json)\n\n"
            } else {
                text += "event: removed\ndata: {\"id\":\(id)}\n\n"
            }
        }
        if !text.isEmpty { send(text) }
    }
}
