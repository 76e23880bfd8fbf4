import NIOCore

/// A stream's queued DATA, oldest first, only non-empty buffers. Most streams queue one
/// buffer at a time (a response's body arrives in one read, and is sent before the
/// next), so the first waits inline and only a second one at once makes a queue: a
/// queue per stream was an allocation per request on each side of every hop.
struct OutgoingData {
    /// The oldest buffer; nil only when nothing waits (`rest` is then empty).
    private(set) var first: ByteBuffer?
    /// The buffers after `first`, in order; made on first need, and kept once made.
    private var rest: CircularBuffer<ByteBuffer>?

    mutating func append(_ buffer: ByteBuffer) {
        if first == nil {
            first = buffer
            return
        }
        if rest == nil { rest = CircularBuffer(initialCapacity: 4) }
        rest!.append(buffer)
    }

    /// Drops the oldest buffer: the next one becomes `first`.
    mutating func removeFirst() {
        first = rest?.popFirst()
    }

    /// Puts `buffer` (what is left of `first`) in its place.
    mutating func replaceFirst(with buffer: ByteBuffer) {
        precondition(first != nil, "no queued buffer to replace")
        first = buffer
    }

    /// Drops everything, keeping the queue's storage if it has one (the stream is
    /// ending, and a CircularBuffer emptied without it allocates a new one).
    mutating func removeAll() {
        first = nil
        rest?.removeAll(keepingCapacity: true)
    }
}
