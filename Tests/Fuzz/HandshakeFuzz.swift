import Foundation
import NIOCore
import PinholeCore

/// libFuzzer's entry for the handshake decoder: the input is read as the relay reads an
/// agent's hello and as the agent reads the relay's answer, both as it arrives (the
/// 4-byte length first) and with a length prefix that fits, so that the JSON itself is
/// reached. A hello that decodes goes through the relay's checks (name, aliases, shared
/// service, software string). Any crash or hang is a finding, and so is a message that
/// does not survive being encoded and decoded again: the relay answers with the
/// encoder, and the agent reads with the decoder.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHandshake(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var fitted: [UInt8] = withUnsafeBytes(of: UInt32(size).bigEndian) { Array($0) }
    fitted += bytes
    for input in [bytes, fitted] {
        for hello in decodeAll(AgentHello.self, input) {
            _ = DNS1123.labelViolation(hello.name)
            for alias in hello.aliases { _ = try? ServiceAlias(description: alias) }
            if let share = hello.service {
                _ = try? ServiceAlias(service: share.service, namespace: share.namespace)
                _ = share.serviceKey
            }
            _ = UntrustedText.escaped(hello.software, limit: 100)
            roundTrip(hello)
        }
        for answer in decodeAll(RelayAnswer.self, input) {
            if let refusal = answer.refusal { _ = UntrustedText.escaped(refusal.message) }
            roundTrip(answer)
        }
    }
    return 0
}

/// Every message `bytes` holds, read in two parts split where the first byte says, as
/// a connection would receive them; stops at the first malformed one.
private func decodeAll<Message: Decodable>(_ type: Message.Type, _ bytes: [UInt8]) -> [Message] {
    let split = bytes.isEmpty ? 0 : Int(bytes[0]) % (bytes.count + 1)
    var buffer = ByteBuffer()
    var messages: [Message] = []
    do {
        for part in [bytes[..<split], bytes[split...]] {
            buffer.writeBytes(part)
            while let message = try HandshakeFraming.decode(type, from: &buffer) { messages.append(message) }
        }
    } catch {
        // Bad input is refused with an error: the expected outcome.
    }
    return messages
}

private func roundTrip<Message: Codable & Equatable>(_ message: Message) {
    do {
        var encoded = try HandshakeFraming.encode(message, allocator: ByteBufferAllocator())
        guard let decoded = try HandshakeFraming.decode(Message.self, from: &encoded), decoded == message else {
            fatalError("\(message) does not survive encoding and decoding")
        }
    } catch {
        // A message read off the wire may be too large to send back (the limit is on
        // the frame, and encoding escapes more than the input did): not a finding.
        guard "\(error)".contains("exceeds") else { fatalError("\(message) cannot be encoded again: \(error)") }
    }
}
