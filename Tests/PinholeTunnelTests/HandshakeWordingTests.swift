import NIOCore
import Testing

@testable import PinholeTunnel

@Suite("Handshake messages: refusals in words, never a decoder's dump")
struct HandshakeWordingTests {
    private func failure(_ json: String) -> String? {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(json.utf8.count))
        buffer.writeString(json)
        do {
            _ = try HandshakeFraming.decode(AgentHello.self, from: &buffer)
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test("a missing field, a wrong type, a refusal reason this agent does not know, bytes that are not JSON")
    func malformedHello() {
        #expect(
            failure(#"{"version":1,"name":"a","aliases":[],"software":"x"}"#)
                == "malformed handshake message: the field 'token' is missing")
        #expect(
            failure(#"{"version":"1","token":"t","name":"a","aliases":[],"software":"x"}"#)
                == "malformed handshake message: the field 'version' has the wrong type")
        #expect(failure("not json") == "malformed handshake message: it is not valid JSON")
        var buffer = ByteBuffer()
        let answer = #"{"version":1,"refusal":{"reason":"some_new_reason","message":"m"}}"#
        buffer.writeInteger(UInt32(answer.utf8.count))
        buffer.writeString(answer)
        #expect(throws: HandshakeFraming.Failure.self) { try HandshakeFraming.decode(RelayAnswer.self, from: &buffer) }
    }

    @Test("the hello names the agent's version")
    func helloSoftware() {
        #expect(AgentHello(token: "t", name: "n").software == "pinhole-agent/0.1.0")
    }
}
