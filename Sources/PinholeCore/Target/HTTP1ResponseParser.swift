import NIOCore
import NIOHTTP1

/// Reads the target's HTTP/1.x responses, one per request sent, in place of NIO's
/// HTTPResponseDecoder.
///
/// NIO's decoder hands each head and body piece through the channel pipeline as a
/// boxed part, and must watch outgoing request heads to know which answer a HEAD;
/// here the connection says what it asked, and pulls events straight out of its
/// input.
///
/// Framing follows RFC 9112 §6.3: no body after HEAD, 1xx, 204 and 304; chunked when
/// Transfer-Encoding ends with it; otherwise Content-Length; otherwise to the close.
struct HTTP1ResponseParser {
    enum Event: Equatable {
        /// The final head (1xx interim heads are skipped). `reusable` is false when the
        /// connection cannot carry another request after this response.
        case head(ProxyResponseHead, reusable: Bool)
        case body(ByteBuffer)
        case end(trailers: HTTPHeaders?)
    }

    private enum State {
        /// No response expected: the target has nothing to say.
        case idle
        case head(bodyAllowed: Bool, mayUpgrade: Bool)
        case body(HTTP1BodyReader)
    }

    private var state = State.idle
    private var scanner = HTTP1SectionScanner()
    private static let versionPrefix = Array("HTTP/1.".utf8)

    /// The next response answers a request just sent; `bodyAllowed` is false for HEAD,
    /// and `mayUpgrade` is true for a request that asked to switch protocols: a 101 is
    /// then its final head, and all that follows is its body, to the close.
    mutating func expectResponse(bodyAllowed: Bool, mayUpgrade: Bool = false) {
        state = .head(bodyAllowed: bodyAllowed, mayUpgrade: mayUpgrade)
    }

    /// The next event in `input`, consuming its bytes, or nil when more are needed.
    mutating func next(from input: inout ByteBuffer) throws(HTTP1SyntaxError) -> Event? {
        while true {
            switch state {
            case .idle:
                Self.skipEmptyLines(&input)
                guard input.readableBytes == 0 else {
                    throw HTTP1SyntaxError(description: "bytes arrived that answer no request")
                }
                return nil
            case .head(let bodyAllowed, let mayUpgrade):
                // Like llhttp: a stray CRLF after the last response is not an error.
                Self.skipEmptyLines(&input)
                // Something that is not HTTP (a TLS server, SSH) is named at once, not
                // after the close that a head which never ends would wait for.
                let view = input.readableBytesView
                guard view.prefix(7).elementsEqual(Self.versionPrefix.prefix(view.count)) else {
                    throw HTTP1SyntaxError(
                        description: "a status line that is not HTTP/1.x: '\(HTTP1Syntax.quoted(view.prefix(32)))'")
                }
                guard let section = try scanner.take(from: &input) else { return nil }
                guard let event = try readHead(section, bodyAllowed: bodyAllowed, mayUpgrade: mayUpgrade) else {
                    continue
                }
                return event
            case .body(var reader):
                let step = try reader.next(from: &input)
                state = reader.isDone ? .idle : .body(reader)
                switch step {
                case .none: return nil
                case .body(let piece): return .body(piece)
                case .end(let trailers): return .end(trailers: trailers)
                }
            }
        }
    }

    private static func skipEmptyLines(_ input: inout ByteBuffer) {
        while let first = input.readableBytesView.first, first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n") {
            input.moveReaderIndex(forwardBy: 1)
        }
    }

    /// The connection closed: the end of a body that ran to the close, if one did.
    mutating func endOfInput() -> Event? {
        guard case .body(var reader) = state, case .end(let trailers) = reader.endOfInput() else { return nil }
        state = .idle
        return .end(trailers: trailers)
    }

    /// Reads a final head and its framing; nil for an interim (1xx) head, which is
    /// skipped. Framing fields are read as they go by, and hop-by-hop fields are never
    /// made into Strings, since they do not travel on.
    private mutating func readHead(
        _ section: [UInt8], bodyAllowed: Bool, mayUpgrade: Bool
    ) throws(HTTP1SyntaxError) -> Event? {
        var lines = HTTP1Lines(section)
        guard let statusLine = lines.next() else {
            throw HTTP1SyntaxError(description: "an empty line where a status line belongs")
        }
        let (minorVersion, code) = try Self.statusLine(section[statusLine])
        let switched = code == 101 && mayUpgrade
        if (100..<200).contains(code) && !switched {
            if code == 101 {
                throw HTTP1SyntaxError(description: "the target switched protocols, which nobody asked it to")
            }
            return nil
        }
        var fields: [(String, String)] = []  // see HTTP1RequestParser.readHead
        fields.reserveCapacity(HTTP1Syntax.lineCount(section))
        var hopByHop = HopByHopFields()
        var length: Int?
        while let line = lines.next() {
            let (name, value) = try HTTP1Syntax.field(section[line])
            if hopByHop.take(name: name, value: value) { continue }
            if name.count == 16, HopByHop.equalsIgnoringCase(name, TunnelUpgrade.responseField) {
                continue  // only the agent may say this, for a 101
            }
            if name.count == 14, HopByHop.equalsIgnoringCase(name, "content-length") {
                let repeated = length != nil
                length = try HTTP1Syntax.contentLength(value, previous: length)
                if repeated { continue }  // HTTP/2 refuses a repeated content-length
            }
            fields.append((HTTP1Syntax.text(name), HTTP1Syntax.text(value)))
        }
        hopByHop.removeConnectionOptions(from: &fields)
        var headers = HTTPHeaders(fields)
        // What follows a 101 is not a body HTTP frames: a length would cut it in HTTP/2.
        if switched { headers.remove(name: "content-length") }
        if hopByHop.hasTransferEncoding, length != nil {
            // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length, and a proxy must
            // not pass the length on: the body it frames differs from what it announces.
            headers.remove(name: "content-length")
        }

        var reusable = hopByHop.persists(minorVersion: minorVersion)
        let framing: HTTP1BodyReader.Framing
        if switched {
            framing = .untilClose
        } else if !bodyAllowed || code == 204 || code == 304 {
            framing = .none
        } else if hopByHop.hasTransferEncoding {
            // HTTP/2 has no transfer codings: one other than chunked would reach the
            // client still applied, with nothing saying so.
            if let other = hopByHop.otherTransferCoding {
                throw HTTP1SyntaxError(description: "a transfer coding the tunnel cannot carry ('\(other)')")
            }
            guard hopByHop.isChunked else { throw HTTP1SyntaxError(description: "an empty Transfer-Encoding") }
            framing = .chunked
        } else if let length {
            framing = .length(length)
        } else {
            framing = .untilClose
        }
        if framing == .untilClose { reusable = false }
        state = .body(HTTP1BodyReader(framing))
        return .head(
            ProxyResponseHead(
                status: HTTPResponseStatus(statusCode: code), headers: headers,
                upgrade: switched ? hopByHop.upgrade ?? "websocket" : nil),
            reusable: reusable)
    }

    /// `HTTP/1.x NNN reason`: the minor version and the status code.
    private static func statusLine(_ line: ArraySlice<UInt8>) throws(HTTP1SyntaxError) -> (minor: Int, code: Int) {
        let start = line.startIndex
        func digit(_ offset: Int) -> Int? {
            guard offset < line.count, line[start + offset] &- UInt8(ascii: "0") < 10 else { return nil }
            return Int(line[start + offset] &- UInt8(ascii: "0"))
        }
        guard line.count >= 9, line.starts(with: versionPrefix), let minor = digit(7), minor <= 1,
            line[start + 8] == UInt8(ascii: " ")
        else {
            throw HTTP1SyntaxError(
                description: "a status line that is not HTTP/1.x: '\(HTTP1Syntax.quoted(line.prefix(64)))'")
        }
        guard let hundreds = digit(9), let tens = digit(10), let ones = digit(11),
            line.count == 12 || line[start + 12] == UInt8(ascii: " ")
        else {
            throw HTTP1SyntaxError(
                description: "a status line whose status code is not three digits: "
                    + "'\(HTTP1Syntax.quoted(line.prefix(64)))'")
        }
        return (minor, hundreds * 100 + tens * 10 + ones)
    }
}
