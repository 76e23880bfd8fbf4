import NIOCore
import NIOHTTP1

/// Why the target's bytes are not an HTTP/1.x response.
struct HTTP1ResponseError: Error, Equatable, CustomStringConvertible {
    let description: String
}

/// Reads the target's HTTP/1.x responses, one per request sent, in place of NIO's
/// HTTPResponseDecoder.
///
/// NIO's decoder hands each head and body piece through the channel pipeline as a
/// boxed part, and must watch outgoing request heads to know which answer a HEAD;
/// here the connection says what it asked, and pulls events straight out of its
/// input. Body pieces are slices of the bytes read, never copies.
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
        case head(bodyAllowed: Bool)
        case fixed(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        /// The body is over (or there was none): `.end` is the next event.
        case complete
    }

    private var state = State.idle
    private static let versionPrefix = Array("HTTP/1.".utf8)
    /// Like NIO's default: a head (or trailer section) larger than this is refused.
    static let maximumHeadSize = 80 * 1024

    /// The next response answers a request just sent; `bodyAllowed` is false for HEAD.
    mutating func expectResponse(bodyAllowed: Bool) {
        state = .head(bodyAllowed: bodyAllowed)
    }

    /// True while a body runs to the end of the connection.
    var endsAtClose: Bool {
        if case .untilClose = state { return true }
        return false
    }

    /// The next event in `input`, consuming its bytes, or nil when more are needed.
    mutating func next(from input: inout ByteBuffer) throws(HTTP1ResponseError) -> Event? {
        while true {
            switch state {
            case .idle:
                guard input.readableBytes == 0 else {
                    throw HTTP1ResponseError(description: "bytes arrived that answer no request")
                }
                return nil
            case .head(let bodyAllowed):
                // Something that is not HTTP (a TLS server, SSH) is named at once, not
                // after the close that a head which never ends would wait for.
                let view = input.readableBytesView
                guard view.prefix(7).elementsEqual(Self.versionPrefix.prefix(view.count)) else {
                    let start = String(decoding: view.prefix(32), as: UTF8.self)
                    throw HTTP1ResponseError(description: "a status line that is not HTTP/1.x: '\(start)'")
                }
                guard let section = try Self.takeSection(from: &input) else { return nil }
                guard let event = try startBody(section, bodyAllowed: bodyAllowed) else { continue }
                return event
            case .fixed(let remaining):
                guard input.readableBytes > 0 else { return nil }
                let piece = input.readSlice(length: min(remaining, input.readableBytes))!
                let left = remaining - piece.readableBytes
                state = left == 0 ? .complete : .fixed(remaining: left)
                return .body(piece)
            case .chunkSize:
                guard let line = try Self.takeLine(from: &input, limit: 4096) else { return nil }
                let size = try Self.chunkSize(line)
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard input.readableBytes > 0 else { return nil }
                let piece = input.readSlice(length: min(remaining, input.readableBytes))!
                let left = remaining - piece.readableBytes
                state = left == 0 ? .chunkDataEnd : .chunkData(remaining: left)
                return .body(piece)
            case .chunkDataEnd:
                guard let line = try Self.takeLine(from: &input, limit: 2) else { return nil }
                guard line.isEmpty else { throw HTTP1ResponseError(description: "a chunk is longer than its size") }
                state = .chunkSize
            case .trailers:
                guard let section = try Self.takeSection(from: &input) else { return nil }
                state = .idle
                let trailers = try Self.trailerFields(section)
                return .end(trailers: trailers.isEmpty ? nil : trailers)
            case .untilClose:
                guard input.readableBytes > 0 else { return nil }
                return .body(input.readSlice(length: input.readableBytes)!)
            case .complete:
                state = .idle
                return .end(trailers: nil)
            }
        }
    }

    /// The connection closed: the end of a body that ran to the close, if one did.
    mutating func endOfInput() -> Event? {
        guard case .untilClose = state else { return nil }
        state = .idle
        return .end(trailers: nil)
    }

    // MARK: Heads

    /// Reads a final head and its framing; nil for an interim (1xx) head, which is
    /// skipped. The section is copied out of the buffer once (a few hundred bytes), and
    /// read in one pass over that array: framing fields are read as they go by, and
    /// hop-by-hop fields are never made into Strings, since they do not travel on.
    private mutating func startBody(_ section: ByteBuffer, bodyAllowed: Bool) throws(HTTP1ResponseError) -> Event? {
        let bytes = section.getBytes(at: section.readerIndex, length: section.readableBytes) ?? []
        var lines = Lines(bytes)
        guard let statusLine = lines.next() else {
            throw HTTP1ResponseError(description: "an empty line where a status line belongs")
        }
        let (minorVersion, code) = try Self.statusLine(bytes[statusLine])
        if (100..<200).contains(code) {
            if code == 101 {
                throw HTTP1ResponseError(description: "the target switched protocols, which the tunnel does not carry")
            }
            return nil
        }
        var headers = HTTPHeaders()
        var length: Int?
        var chunked: Bool?
        var close = minorVersion == 0
        var connectionOptions: [String] = []
        while let line = lines.next() {
            let (name, value) = try Self.field(bytes[line])
            if let fixed = HopByHop.fixedName(name) {
                if fixed == "connection" {
                    for token in Self.tokens(value) {
                        if HopByHop.equalsIgnoringCase(token, "close") {
                            close = true
                        } else if HopByHop.equalsIgnoringCase(token, "keep-alive") {
                            if minorVersion == 0 { close = false }
                        } else if HopByHop.fixedName(token) == nil {
                            connectionOptions.append(String(decoding: token, as: UTF8.self).lowercased())
                        }
                    }
                } else if fixed == "transfer-encoding" {
                    chunked = Self.tokens(value).last.map { HopByHop.equalsIgnoringCase($0, "chunked") } ?? false
                }
                continue
            }
            if name.count == 14, HopByHop.equalsIgnoringCase(name, "content-length") {
                length = try Self.contentLength(value, previous: length)
            }
            headers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        for option in connectionOptions { headers.remove(name: option) }

        let head = ProxyResponseHead(status: HTTPResponseStatus(statusCode: code), headers: headers)
        var reusable = !close
        if !bodyAllowed || code == 204 || code == 304 {
            state = .complete
        } else if let chunked {
            state = chunked ? .chunkSize : .untilClose
            reusable = reusable && chunked
        } else if let length {
            state = length == 0 ? .complete : .fixed(remaining: length)
        } else {
            state = .untilClose
            reusable = false
        }
        return .head(head, reusable: reusable)
    }

    /// `HTTP/1.x NNN reason`: the minor version and the status code.
    private static func statusLine(_ line: ArraySlice<UInt8>) throws(HTTP1ResponseError) -> (minor: Int, code: Int) {
        let start = line.startIndex
        func digit(_ offset: Int) -> Int? {
            guard offset < line.count, line[start + offset] &- UInt8(ascii: "0") < 10 else { return nil }
            return Int(line[start + offset] &- UInt8(ascii: "0"))
        }
        guard line.count >= 12, line.starts(with: versionPrefix), let minor = digit(7), minor <= 1,
            line[start + 8] == UInt8(ascii: " "), let hundreds = digit(9), let tens = digit(10),
            let ones = digit(11), line.count == 12 || line[start + 12] == UInt8(ascii: " ")
        else {
            let text = String(decoding: line.prefix(64), as: UTF8.self)
            throw HTTP1ResponseError(description: "a status line that is not HTTP/1.x: '\(text)'")
        }
        return (minor, hundreds * 100 + tens * 10 + ones)
    }

    /// Splits `name: value` into its name and its value without surrounding
    /// whitespace. Folded lines (starting with whitespace) are refused.
    private static func field(
        _ line: ArraySlice<UInt8>
    ) throws(HTTP1ResponseError) -> (name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        if let first = line.first, first == 0x20 || first == 0x09 {
            throw HTTP1ResponseError(description: "a folded header line, which HTTP/1.1 no longer allows")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex,
            !line[..<colon].contains(where: { $0 == 0x20 || $0 == 0x09 })
        else {
            let text = String(decoding: line.prefix(64), as: UTF8.self)
            throw HTTP1ResponseError(description: "a header line without a name: '\(text)'")
        }
        return (line[..<colon], trimmed(line[(colon + 1)...]))
    }

    /// The comma-separated elements of a field value, trimmed, empty ones left out.
    private static func tokens(_ value: ArraySlice<UInt8>) -> [ArraySlice<UInt8>] {
        value.split(separator: UInt8(ascii: ",")).map(trimmed).filter { !$0.isEmpty }
    }

    private static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return bytes[start..<end]
    }

    /// A Content-Length value: digits only, and the same as any earlier one.
    private static func contentLength(_ digits: ArraySlice<UInt8>, previous: Int?) throws(HTTP1ResponseError) -> Int {
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else {
            let text = String(decoding: digits.prefix(32), as: UTF8.self)
            throw HTTP1ResponseError(description: "an invalid Content-Length: '\(text)'")
        }
        let length = digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
        if let previous, previous != length {
            throw HTTP1ResponseError(description: "two different Content-Length values, \(previous) and \(length)")
        }
        return length
    }

    /// Trailer lines as fields.
    private static func trailerFields(_ section: ByteBuffer) throws(HTTP1ResponseError) -> HTTPHeaders {
        let bytes = section.getBytes(at: section.readerIndex, length: section.readableBytes) ?? []
        var trailers = HTTPHeaders()
        var lines = Lines(bytes)
        while let line = lines.next() {
            let (name, value) = try field(bytes[line])
            trailers.add(name: String(decoding: name, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
        }
        return trailers
    }

    private static func chunkSize(_ line: String) throws(HTTP1ResponseError) -> Int {
        var size = 0
        var digits = 0
        for byte in line.utf8 {
            // Chunk extensions (after ';') carry nothing we use.
            if byte == UInt8(ascii: ";") || byte == 0x20 || byte == 0x09 { break }
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: throw HTTP1ResponseError(description: "an invalid chunk size: '\(line.prefix(32))'")
            }
            guard size <= Int.max >> 4 else { throw HTTP1ResponseError(description: "a chunk size too large") }
            size = size << 4 | Int(nibble)
            digits += 1
        }
        guard digits > 0 else { throw HTTP1ResponseError(description: "an empty chunk size line") }
        return size
    }

    // MARK: Lines

    /// One line (without its CRLF or bare LF), or nil until it is complete.
    private static func takeLine(from input: inout ByteBuffer, limit: Int) throws(HTTP1ResponseError) -> String? {
        let view = input.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limit { throw HTTP1ResponseError(description: "a line longer than \(limit) bytes") }
            return nil
        }
        let length = newline - view.startIndex
        var line = input.readString(length: length)!
        input.moveReaderIndex(forwardBy: 1)
        if line.utf8.last == UInt8(ascii: "\r") { line.removeLast() }
        return line
    }

    /// A head or trailer section, through the empty line that ends it, or nil
    /// (consuming nothing) until all of it has arrived.
    private static func takeSection(from input: inout ByteBuffer) throws(HTTP1ResponseError) -> ByteBuffer? {
        let view = input.readableBytesView
        var lineStart = view.startIndex
        var index = view.startIndex
        while index < view.endIndex {
            if view[index] == UInt8(ascii: "\n") {
                let lineLength = index - lineStart
                if lineLength == 0 || (lineLength == 1 && view[lineStart] == UInt8(ascii: "\r")) {
                    return input.readSlice(length: index + 1 - view.startIndex)!
                }
                lineStart = index + 1
            }
            index += 1
        }
        if view.count > maximumHeadSize {
            throw HTTP1ResponseError(description: "a head larger than \(maximumHeadSize / 1024) KiB")
        }
        return nil
    }
}

/// The lines of a section, as index ranges without their CRLF (or bare LF); ends at
/// the empty line.
private struct Lines {
    private let bytes: [UInt8]
    private var position = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    mutating func next() -> Range<Int>? {
        guard position < bytes.count, let newline = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) else {
            return nil
        }
        var end = newline
        if end > position, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let line = position..<end
        position = newline + 1
        return line.isEmpty ? nil : line
    }
}
