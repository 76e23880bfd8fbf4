import NIOCore
import PinholeCore

/// Tells HTTP/2 with prior knowledge from HTTP/1.1 by the first bytes a client sends:
/// an HTTP/2 client starts with the connection preface (RFC 9113 §3.4), which no
/// HTTP/1.1 request can begin with. A decision needs at most 24 bytes, and usually one:
/// a byte that differs from the preface settles it for HTTP/1.1.
struct PrefaceSniffer {
    enum Verdict: Equatable {
        case needMoreBytes
        case http1
        case http2
    }

    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Looks at everything received so far.
    static func verdict(_ received: ByteBuffer) -> Verdict {
        let view = received.readableBytesView
        for (offset, byte) in zip(preface.indices, view) where byte != preface[offset] {
            return .http1
        }
        return view.count >= preface.count ? .http2 : .needMoreBytes
    }
}

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
        var all = bytes
        if var held {
            // The held bytes are let go of in the state first, so that the buffer they
            // are in grows in place rather than being copied.
            state = .sniffing(held: nil)
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
