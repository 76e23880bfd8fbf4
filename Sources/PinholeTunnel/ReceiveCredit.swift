import PinholeCore
import PinholeHTTP2

/// Receive window a stream owes its peer. Data is acknowledged (and the window given
/// back) only while whoever it is passed on to keeps up; otherwise the credit is held
/// until they can take more, so a slow consumer slows its own stream and no other.
struct ReceiveCredit {
    private var held = 0

    /// `count` bytes were just passed on; acknowledge them now if `consumerKeepsUp`.
    mutating func received(_ count: Int, on stream: HTTP2Stream?, consumerKeepsUp: Bool) {
        held += count
        if consumerKeepsUp { release(on: stream) }
    }

    /// The consumer can take more again: give back everything held.
    mutating func release(on stream: HTTP2Stream?) {
        guard held > 0 else { return }
        stream?.consumed(held)
        held = 0
    }
}
