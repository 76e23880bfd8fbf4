import NIOCore
import Testing

@testable import PinholeHTTP2

@Suite("A stream's queued DATA")
struct OutgoingDataTests {
    static func buffer(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    /// Takes everything out, as the data provider does: first, then remove it.
    static func drain(_ queue: inout OutgoingData) -> [String] {
        var taken: [String] = []
        while let first = queue.first {
            taken.append(String(buffer: first))
            queue.removeFirst()
        }
        return taken
    }

    @Test("buffers come out in the order they went in, whether one waits or many")
    func order() {
        var queue = OutgoingData()
        #expect(queue.first == nil)
        queue.append(Self.buffer("a"))
        #expect(queue.first.map { String(buffer: $0) } == "a")
        queue.append(Self.buffer("b"))
        queue.append(Self.buffer("c"))
        queue.removeFirst()
        queue.append(Self.buffer("d"))
        #expect(Self.drain(&queue) == ["b", "c", "d"])
        // Empty again: the next buffer is first at once.
        queue.append(Self.buffer("e"))
        #expect(Self.drain(&queue) == ["e"])
    }

    @Test("what is left of a partly sent buffer stays first, ahead of the rest")
    func partlySent() {
        var queue = OutgoingData()
        queue.append(Self.buffer("hello"))
        queue.append(Self.buffer("world"))
        var chunk = queue.first!
        _ = chunk.readSlice(length: 2)
        queue.replaceFirst(with: chunk)
        #expect(Self.drain(&queue) == ["llo", "world"])
    }

    @Test("dropping everything empties the queue, and it takes new buffers after")
    func removeAll() {
        var queue = OutgoingData()
        for text in ["a", "b", "c"] { queue.append(Self.buffer(text)) }
        queue.removeAll()
        #expect(queue.first == nil)
        queue.append(Self.buffer("x"))
        queue.append(Self.buffer("y"))
        #expect(Self.drain(&queue) == ["x", "y"])
    }
}
