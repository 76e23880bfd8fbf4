import NIOCore
import Testing

@testable import PinholeCore

/// Random and mutated input for both parsers: each must either read it or throw,
/// never trap or loop, whatever the bytes and however they are split.
@Suite("HTTP/1 parsers on random and mangled input")
struct HTTP1FuzzTests {
    /// A small deterministic generator, so a failure can be replayed.
    struct Generator: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let requestSeed = Array(
        ("POST /a?b=1 HTTP/1.1\r\nHost: demo\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive, x\r\n\r\n"
            + "4;e=1\r\nabcd\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.0\r\nHost: d\r\nContent-Length: 3\r\n\r\nxyz").utf8)
    static let responseSeed = Array(
        ("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n"
            + "4\r\nabcd\r\n0\r\nT: 1\r\n\r\n").utf8)

    /// The seed with a few bytes replaced, inserted or removed, or pure noise.
    static func mangled(_ seed: [UInt8], _ random: inout Generator) -> [UInt8] {
        if Int.random(in: 0..<10, using: &random) == 0 {
            return (0..<Int.random(in: 0..<200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
        }
        var bytes = seed
        let alphabet = Array("\r\n :;,0123456789abcdefHTTP/1.".utf8) + [0, 0x7F, 0xFF, 0x09]
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let index = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0: bytes[index] = alphabet.randomElement(using: &random)!
            case 1: bytes.insert(alphabet.randomElement(using: &random)!, at: index)
            default: if bytes.count > 1 { bytes.remove(at: index) }
            }
        }
        return bytes
    }

    /// Feeds `bytes` in random pieces through `next`; returns the events read.
    static func feed<Event>(
        _ bytes: [UInt8], _ random: inout Generator, _ next: (inout ByteBuffer) throws -> Event?
    ) -> Int {
        var input = ByteBuffer()
        var offset = 0
        var events = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + Int.random(in: 1...40, using: &random))
            input.writeBytes(bytes[offset..<end])
            offset = end
            do {
                while try next(&input) != nil {
                    events += 1
                    // Every event consumes input or moves the state on; a parser that
                    // returned events forever without either would hang here.
                    if events > 10_000 { return events }
                }
            } catch {
                return events
            }
        }
        return events
    }

    @Test("the request parser reads or refuses 3,000 mangled inputs")
    func requests() {
        var random = Generator(state: 1)
        for _ in 0..<3000 {
            var parser = HTTP1RequestParser()
            let events = Self.feed(Self.mangled(Self.requestSeed, &random), &random) { try parser.next(from: &$0) }
            #expect(events < 10_000)
        }
    }

    @Test("the response parser reads or refuses 3,000 mangled inputs")
    func responses() {
        var random = Generator(state: 2)
        for _ in 0..<3000 {
            var parser = HTTP1ResponseParser()
            parser.expectResponse(bodyAllowed: Bool.random(using: &random))
            let events = Self.feed(Self.mangled(Self.responseSeed, &random), &random) { try parser.next(from: &$0) }
            #expect(events < 10_000)
            _ = parser.endOfInput()
        }
    }
}
