import Foundation
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// What an `OutputWriter` keeps with its bytes, under its lock: how lines are made,
/// and the lines a terminal shows below them, redrawn in place (requests still waiting).
protocol OutputState {
    /// Whether there are lines to keep at the bottom of a terminal.
    var hasLiveLines: Bool { get }
    /// Appends them, each ending in a newline, at most `width` columns wide; returns how many.
    mutating func appendLiveLines(to output: inout [UInt8], now: NIODeadline, width: Int) -> Int
    /// Appends the line that says `count` lines were dropped.
    mutating func appendDroppedNotice(_ count: Int, to output: inout [UInt8])
}

/// Writes lines to a file descriptor from a thread of its own, so that no caller (an
/// event loop above all) ever waits for a slow terminal or a full pipe.
///
/// Callers append bytes under a lock and return. The thread writes what has gathered in
/// one `write`: after a short pause (`batchDelay`) that lets a busy agent's lines share
/// it, at once for `urgent` lines, and whatever is left at `flush`. Past `limit` bytes
/// waiting, lines are dropped and counted, and the count is written once the output
/// moves again. On a terminal, the state's live lines stay at the bottom, redrawn each
/// second.
///
/// Callers signal the thread only when it sleeps with nothing to do (`idle`) or for an
/// urgent line: while lines keep coming, it wakes by its own pause's timeout, so a busy
/// agent's event loops make no wake-up calls and never hand the thread a lock it must
/// take back from them (on two cores, each such wake-up preempted an event loop).
final class OutputWriter<State: OutputState>: @unchecked Sendable {
    // @unchecked: every stored `var` below is read and written only with `condition`
    // locked; the thread and the callers meet nowhere else.
    private let condition = NSCondition()
    private var pending: [UInt8] = []
    private var spare: [UInt8] = []
    private var state: State
    private var dropped = 0
    private var urgent = false
    /// The thread waits for a signal: nothing is pending, or only live lines are shown.
    private var idle = false
    private var writing = false
    private var started = false
    private var stopping = false
    /// Live lines on the terminal now, below everything else.
    private var liveShown = 0

    private let descriptor: Int32
    let isTerminal: Bool
    private let limit: Int
    private let batchDelay: TimeInterval
    /// Written without waiting out the pause once this much has gathered.
    private let batchBytes: Int

    init(
        descriptor: Int32, state: State, limit: Int = 1 << 20, batchDelay: TimeInterval = 0.01,
        batchBytes: Int = 64 << 10
    ) {
        self.descriptor = descriptor
        self.state = state
        self.isTerminal = isatty(descriptor) == 1
        self.limit = limit
        self.batchDelay = batchDelay
        self.batchBytes = batchBytes
    }

    /// Lets `body` append to what waits to be written (`lines` lines), and change the
    /// state. Returns false, having dropped them, when too much is waiting already.
    @discardableResult
    func append(urgent: Bool = false, lines: Int = 1, _ body: (inout [UInt8], inout State) -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        startIfNeeded()
        guard pending.count < limit, !stopping else {
            dropped += lines
            return false
        }
        body(&pending, &state)
        if urgent { self.urgent = true }
        if idle || urgent { condition.broadcast() }
        return true
    }

    /// Changes the state only (live lines appear at the next redraw).
    func update(_ body: (inout State) -> Void) {
        condition.lock()
        defer { condition.unlock() }
        startIfNeeded()
        body(&state)
        if idle { condition.broadcast() }
    }

    /// What `body` reads of the state.
    func read<Value>(_ body: (State) -> Value) -> Value {
        condition.lock()
        defer { condition.unlock() }
        return body(state)
    }

    /// Waits until what was appended so far is written, or `timeout` passed (a paused
    /// terminal must not hold the process up for ever).
    func flush(timeout: TimeInterval = 2) {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        guard started else { return }
        urgent = true
        condition.broadcast()
        while pending.count > 0 || writing || dropped > 0 {
            if !condition.wait(until: deadline) { return }
        }
    }

    /// Writes what is left, then ends the thread; later lines are dropped.
    func stop(timeout: TimeInterval = 2) {
        flush(timeout: timeout)
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        let thread = Thread { self.run() }
        thread.name = "pinhole output"
        thread.start()
    }

    // MARK: The writing thread

    private func run() {
        condition.lock()
        var lingering = false
        while true {
            var redraw = false
            /// Whether what is pending came during a pause already.
            var gathered = false
            while pending.count == 0 && dropped == 0 {
                if stopping {
                    condition.unlock()
                    return
                }
                if isTerminal && state.hasLiveLines && liveShown == 0 {
                    redraw = true  // the first request to wait: shown at once
                    break
                }
                if lingering {
                    // Just written: a busy agent's next lines come in this pause, and
                    // nobody has to signal for them.
                    lingering = false
                    _ = condition.wait(until: Date(timeIntervalSinceNow: batchDelay))
                    gathered = true
                    continue
                }
                gathered = false
                idle = true
                defer { idle = false }
                if isTerminal && (state.hasLiveLines || liveShown > 0) {
                    if !condition.wait(until: Date(timeIntervalSinceNow: 1)) || !state.hasLiveLines {
                        redraw = true
                        break
                    }
                } else {
                    condition.wait()
                }
            }
            if !redraw && !gathered && !urgent && pending.count < batchBytes {
                // Lines that come in this pause share the write; only an urgent line or
                // a flush cuts it short.
                _ = condition.wait(until: Date(timeIntervalSinceNow: batchDelay))
            }
            urgent = false
            var batch = spare
            spare = []
            take(into: &batch)
            writing = true
            condition.unlock()
            writeAll(batch)
            batch.removeAll(keepingCapacity: true)
            condition.lock()
            spare = batch
            writing = false
            lingering = true
            condition.broadcast()
        }
    }

    /// Moves what is waiting into `batch`, with the dropped-lines notice, and on a
    /// terminal the live lines redrawn.
    private func take(into batch: inout [UInt8]) {
        if isTerminal && (liveShown > 0 || state.hasLiveLines) {
            if liveShown > 0 {
                // Up to the first live line, and clear from there down.
                batch.append(contentsOf: [0x1B, UInt8(ascii: "[")])
                batch.append(decimal: liveShown)
                batch.append(contentsOf: [UInt8(ascii: "F"), 0x1B, UInt8(ascii: "["), UInt8(ascii: "J")])
            }
            batch.append(contentsOf: pending)
            pending.removeAll(keepingCapacity: true)
            noteDropped(in: &batch)
            liveShown = state.appendLiveLines(to: &batch, now: .now(), width: terminalWidth() - 1)
        } else if batch.isEmpty {
            swap(&batch, &pending)
            noteDropped(in: &batch)
        } else {
            batch.append(contentsOf: pending)
            pending.removeAll(keepingCapacity: true)
            noteDropped(in: &batch)
        }
    }

    private func noteDropped(in batch: inout [UInt8]) {
        guard dropped > 0 else { return }
        state.appendDroppedNotice(dropped, to: &batch)
        dropped = 0
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else if written < 0 && errno == EAGAIN {
                    // A descriptor someone made non-blocking: wait until it takes more.
                    var poller = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&poller, 1, 1000)
                } else {
                    return  // closed or failing: what cannot be written is lost
                }
            }
        }
    }

    private func terminalWidth() -> Int {
        var size = winsize()
        guard ioctl(descriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 20 else { return 120 }
        return Int(size.ws_col)
    }
}
