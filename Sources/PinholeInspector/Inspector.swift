import NIOConcurrencyHelpers
import NIOCore
import PinholeCore

/// The agent's request inspector: wraps the agent's target to capture each exchange,
/// keeps them in a bounded store, and replays them to the same target.
///
/// Use: `let target = inspector.capture(TargetClient(...))`, give `target` to the agent,
/// then `InspectorServer.start(inspector: ...)` serves the page and the API.
public final class Inspector: Sendable {
    public let store: InspectorStore
    let deadlines: DeadlineWatch
    private let captured = NIOLockedValueBox<CapturingTarget?>(nil)

    /// `onDeadline` hears of each held request that outlived its caller's deadline.
    public init(
        limits: InspectorStore.Limits = .init(), onDeadline: @escaping @Sendable (DeadlineNotice) -> Void = { _ in }
    ) {
        self.store = InspectorStore(limits: limits)
        self.deadlines = DeadlineWatch(report: onDeadline)
    }

    /// `target`, with every exchange recorded. Replays go to the last target wrapped.
    public func capture(_ target: any ExchangeTarget) -> any ExchangeTarget {
        let capturing = CapturingTarget(inner: target, store: store, deadlines: deadlines)
        captured.withLockedValue { $0 = capturing }
        return capturing
    }

    var target: CapturingTarget? { captured.withLockedValue { $0 } }
}

/// A held request outlived the deadline its caller announced.
public struct DeadlineNotice: Sendable, Equatable {
    public var id: Int
    public var method: String
    public var path: String
    public var deadline: CallerDeadline

    /// One line for the console, with the word the developer looks for.
    public var message: String {
        let seconds = Double(deadline.timeout.nanoseconds) / 1e9
        return "\(method) \(path) is still at the app past its caller's deadline of \(seconds.formatted()) s "
            + "(\(deadline.source)): the caller has given up; its answer will go nowhere (inspector #\(id))"
    }
}

/// Where deadline notices go: the command's console line.
struct DeadlineWatch: Sendable {
    let report: @Sendable (DeadlineNotice) -> Void
}
