import NIOCore
import PinholeCore

/// The start of a public connection that may speak either protocol
/// (`PublicProtocolHandler`): its first bytes are held until `PrefaceSniffer` decides,
/// then handed over with the protocol, all at once; whatever comes after only passes on.
struct PublicProtocolStateMachine {
    enum State: Equatable {
        /// Undecided: what came so far, if anything.
        case sniffing(held: ByteBuffer?)
        /// The protocol's handlers took over.
        case handedOver
    }

    enum Action: Equatable {
        /// Hold the bytes; too few to tell yet.
        case wait
        /// Put `protocol`'s handlers in place, and pass them everything held.
        case handOver(ClientProtocol, held: ByteBuffer)
        /// Decided before: pass the bytes on to the protocol's handlers.
        case passOn(ByteBuffer)
    }

    private(set) var state = State.sniffing(held: nil)

    mutating func received(_ bytes: ByteBuffer) -> Action {
        guard case .sniffing(let held) = state else { return .passOn(bytes) }
        // At most 23 bytes are ever held (24 decide), so joining them costs nothing.
        var all = bytes
        if var held {
            held.writeImmutableBuffer(bytes)
            all = held
        }
        switch PrefaceSniffer.verdict(all) {
        case .needMoreBytes:
            state = .sniffing(held: all)
            return .wait
        case .http1:
            state = .handedOver
            return .handOver(.http1, held: all)
        case .http2:
            state = .handedOver
            return .handOver(.http2, held: all)
        }
    }
}
