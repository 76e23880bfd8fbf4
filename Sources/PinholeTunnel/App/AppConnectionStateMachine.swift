/// The lifecycle of the agent's HTTP/2 connection to an h2c app, on one event loop.
///
/// Requests that arrive while there is no usable connection wait (as `Waiter`s) for
/// one connection attempt; they all go on it once it is up, or all fail with its
/// reason. A connection that ends, or that the app drains with GOAWAY, is let go, and
/// the next request connects again. Each attempt has a generation number, so events
/// from an older connection cannot disturb a newer one.
struct AppConnectionStateMachine<Connection, Waiter> {
    enum State {
        case idle
        case connecting(generation: Int, waiting: [Waiter])
        case ready(generation: Int, Connection)
    }

    enum Action {
        case none
        /// Open the request's stream on this connection now.
        case open(Connection, generation: Int)
        /// Start connection attempt `generation`; the request waits for it.
        case connect(generation: Int)
        /// The attempt succeeded: open the waiting requests' streams on it.
        case openWaiting([Waiter], on: Connection, generation: Int)
        /// The attempt failed: answer each waiting request with `reason`.
        case failWaiting([Waiter], reason: String)
        /// A connection nobody waits for any more: close it.
        case close(Connection)
    }

    private(set) var state = State.idle
    private var lastGeneration = 0

    /// A request arrived; `waiter` is made only if it has to wait.
    mutating func requestArrived(_ waiter: @autoclosure () -> Waiter) -> Action {
        switch state {
        case .ready(let generation, let connection):
            return .open(connection, generation: generation)
        case .connecting(let generation, var waiting):
            waiting.append(waiter())
            state = .connecting(generation: generation, waiting: waiting)
            return .none
        case .idle:
            lastGeneration += 1
            state = .connecting(generation: lastGeneration, waiting: [waiter()])
            return .connect(generation: lastGeneration)
        }
    }

    mutating func connected(generation: Int, _ connection: Connection) -> Action {
        guard case .connecting(generation, let waiting) = state else { return .close(connection) }
        state = .ready(generation: generation, connection)
        return .openWaiting(waiting, on: connection, generation: generation)
    }

    mutating func connectFailed(generation: Int, reason: String) -> Action {
        guard case .connecting(generation, let waiting) = state else { return .none }
        state = .idle
        return .failWaiting(waiting, reason: reason)
    }

    /// Connection `generation` closed, or no longer takes new streams (GOAWAY).
    mutating func connectionEnded(generation: Int) -> Action {
        guard case .ready(generation, _) = state else { return .none }
        state = .idle
        return .none
    }
}
