import NIOCore

/// The finished records' bytes: one buffer of the ring's size, written round and round.
/// Each record is one contiguous run of bytes, starting with its length (UInt32).
///
/// Positions grow forever; a record's place in the buffer is its position modulo the
/// capacity. Writing a record pushes out whatever it writes over, by moving `tail` past
/// it: a record is still held while its position is at or after `tail`. So pushing out
/// costs nothing (no walk over old records, nothing freed), and the memory a new record
/// lands in is the memory the ring was last writing, not scattered freed blocks.
///
/// Readers get copies of the bytes, never views: a view would share the buffer, and the
/// ring's next write would copy all of it.
struct RecordRing {
    private var bytes: ByteBuffer
    let capacity: Int
    /// Where the next record goes.
    private var head = 0
    /// The oldest position still held.
    private var tail = 0

    init(capacity: Int) {
        self.capacity = max(64, min(capacity, Int(UInt32.max)))
        self.bytes = ByteBufferAllocator().buffer(capacity: self.capacity)
        self.bytes.moveWriterIndex(to: self.capacity)
    }

    /// The bytes the held records take, counting what wrapping leaves unused.
    var usedBytes: Int { head - tail }

    /// Writes `record` after the last one, pushing out what it covers, and returns its
    /// position; nil (and nothing written) when it is larger than the whole ring.
    mutating func append(_ record: [UInt8]) -> Int? {
        record.withUnsafeBytes { source in append(length: source.count) { $0.copyMemory(from: source) } }
    }

    /// Makes room for a record of `length` bytes after the last one, pushing out what it
    /// covers, and has `write` fill exactly that room in place; returns its position, or
    /// nil (and calls nothing) when it is larger than the whole ring.
    mutating func append(length: Int, _ write: (UnsafeMutableRawBufferPointer) -> Void) -> Int? {
        guard length <= capacity else { return nil }
        // A record does not wrap: past the end, it starts again at the beginning.
        let place = head % capacity
        if place + length > capacity { head += capacity - place }
        tail = max(tail, head + length - capacity)
        let start = head % capacity
        // The whole ring is readable (its writer index is at its capacity).
        bytes.withUnsafeMutableReadableBytes { ring in
            write(UnsafeMutableRawBufferPointer(rebasing: ring[start..<start + length]))
        }
        defer { head += length }
        return head
    }

    func holds(_ position: Int) -> Bool {
        position >= tail && position < head
    }

    /// Appends the record at `position` to `buffer`, or only its first `prefix` bytes;
    /// false if it is no longer held, or is shorter.
    func copy(at position: Int, prefix: Int? = nil, into buffer: inout ByteBuffer) -> Bool {
        guard holds(position), let length = bytes.getInteger(at: position % capacity, as: UInt32.self).map(Int.init),
            prefix ?? length <= length, let view = bytes.viewBytes(at: position % capacity, length: prefix ?? length)
        else { return false }
        buffer.writeBytes(view)
        return true
    }

    /// The integer `offset` bytes into the record at `position`, if it is still held.
    func integer<Value: FixedWidthInteger>(at position: Int, offset: Int, as: Value.Type) -> Value? {
        guard holds(position) else { return nil }
        return bytes.getInteger(at: position % capacity + offset, as: Value.self)
    }

    /// Lets go of every record.
    mutating func removeAll() {
        tail = head
    }
}
