import NIOCore

// MARK: Timers

extension PublicRequestHandler {
    func schedule(_ timer: Machine.Timer, in delay: TimeAmount, _ context: ChannelHandlerContext) {
        timers.cancel(timer)
        timers[timer] = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { self.timerFired(timer) }
    }

    private func timerFired(_ timer: Machine.Timer) {
        timers[timer] = nil
        guard let context else { return }
        perform(machine.timerFired(timer, now: context.eventLoop.now, unsentBytes: unsentBytes(context)))
    }

    /// Bytes handed to the channel and not yet taken by the socket.
    private func unsentBytes(_ context: ChannelHandlerContext) -> Int {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }
}

/// One scheduled task per timer of `PublicConnectionStateMachine`.
struct ScheduledTimers {
    private var head, idle, request, linger, queue, stall: Scheduled<Void>?

    subscript(timer: PublicConnectionStateMachine.Timer) -> Scheduled<Void>? {
        get {
            switch timer {
            case .head: return head
            case .idle: return idle
            case .request: return request
            case .linger: return linger
            case .queue: return queue
            case .stall: return stall
            }
        }
        set {
            switch timer {
            case .head: head = newValue
            case .idle: idle = newValue
            case .request: request = newValue
            case .linger: linger = newValue
            case .queue: queue = newValue
            case .stall: stall = newValue
            }
        }
    }

    mutating func cancel(_ timer: PublicConnectionStateMachine.Timer) {
        self[timer]?.cancel()
        self[timer] = nil
    }

    mutating func cancelAll() {
        for timer in PublicConnectionStateMachine.Timer.allCases { cancel(timer) }
    }
}
