import NIOCore

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
