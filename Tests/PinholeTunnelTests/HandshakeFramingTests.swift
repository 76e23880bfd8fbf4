import NIOCore
import PinholeTunnel
import Testing

@Suite("Handshake framing: a 4-byte length, then JSON")
struct HandshakeFramingTests {
    private let allocator = ByteBufferAllocator()

    @Test("a hello survives the round trip, and bytes after it stay for HTTP/2")
    func roundTrip() throws {
        let hello = AgentHello(token: "a-token-long-enough", name: "dev", aliases: ["greeter.demo"], software: "test")
        var buffer = try HandshakeFraming.encode(hello, allocator: allocator)
        #expect(buffer.getInteger(at: 0, as: UInt32.self) == UInt32(buffer.readableBytes - 4))
        buffer.writeString("PRI * HTTP/2.0")
        #expect(try HandshakeFraming.decode(AgentHello.self, from: &buffer) == hello)
        #expect(String(buffer: buffer) == "PRI * HTTP/2.0")
    }

    @Test("a message split across reads decodes only once it is whole, byte by byte")
    func splitAcrossReads() throws {
        let answer = RelayAnswer.accepted(.init(name: "dev", host: "203.0.113.7", port: 20000))
        let frame = try HandshakeFraming.encode(answer, allocator: allocator)
        var received = ByteBuffer()
        for (index, byte) in frame.readableBytesView.enumerated() {
            received.writeInteger(byte)
            let decoded = try HandshakeFraming.decode(RelayAnswer.self, from: &received)
            if index < frame.readableBytes - 1 {
                #expect(decoded == nil)
            } else {
                #expect(decoded == answer)
                #expect(decoded?.tunnel?.authority == "203.0.113.7:20000")
            }
        }
    }

    @Test("a length over the limit is refused before any byte of it is read")
    func oversized() {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(TunnelProtocol.maximumMessageSize + 1))
        #expect(throws: HandshakeFraming.Failure.self) { try HandshakeFraming.decode(AgentHello.self, from: &buffer) }
    }

    @Test("bytes that are not the expected JSON are an error that says so")
    func malformed() throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(7))
        buffer.writeString("GET / H")
        let error = #expect(throws: HandshakeFraming.Failure.self) {
            try HandshakeFraming.decode(AgentHello.self, from: &buffer)
        }
        #expect(error?.description.hasPrefix("malformed handshake message") == true)
    }
}
