import NIOConcurrencyHelpers
import NIOCore

/// Samples this process's RSS every 20 ms until stopped and keeps the peak, so a
/// test can assert that a transfer did not buffer its data.
public final class RSSSampler: Sendable {
    private let task: RepeatedTask
    private let peak: NIOLockedValueBox<Int>

    public init(eventLoop: any EventLoop) {
        let peak = NIOLockedValueBox(residentMemoryBytes())
        self.peak = peak
        task = eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(20)) { _ in
            let now = residentMemoryBytes()
            peak.withLockedValue { $0 = max($0, now) }
        }
    }

    /// Stops sampling and returns the peak RSS in bytes.
    public func stop() -> Int {
        task.cancel()
        let now = residentMemoryBytes()
        return peak.withLockedValue { max($0, now) }
    }
}
