import NIOCore
import NIOHTTP1

/// Why bytes are not the HTTP/1.x they should be; the description says what was wrong.
struct HTTP1SyntaxError: Error, Equatable, CustomStringConvertible {
    let description: String

    /// A head or trailer section past `HTTP1Syntax.maximumHeadSize`, which a public
    /// client is answered 431 for.
    static let headTooLarge = HTTP1SyntaxError(
        description: "a head larger than \(HTTP1Syntax.maximumHeadSize / 1024) KiB")
}

/// The pieces of HTTP/1.x syntax (RFC 9112) that the request and response parsers
/// share: sections of lines, fields, lists, lengths.
///
/// A head is copied out of the buffer once, as a byte array of a few hundred bytes,
/// and read in one pass over it; reading it through a buffer view costs a retain and
/// an exclusivity check per byte.
enum HTTP1Syntax {
    /// A head (or trailer section) larger than this is refused before it is read: the
    /// most the tunnel carries (a head's bytes are never fewer than its header-list
    /// size, unless padded with spaces, which the parser then checks again).
    static let maximumHeadSize = HeadLimits.maximumHeaderListSize

    /// One line of chunked framing (a chunk size, or the end of a chunk's data), without
    /// its CRLF, or nil until it is complete. Unlike head lines, these must end in CRLF:
    /// readers that disagree on a bare LF here are how chunked bodies get smuggled.
    static func takeChunkLine(from input: inout ByteBuffer, limit: Int) throws(HTTP1SyntaxError) -> [UInt8]? {
        let view = input.readableBytesView
        guard let newline = view.prefix(limit + 2).firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > limit + 1 { throw HTTP1SyntaxError(description: "a chunk line longer than \(limit) bytes") }
            return nil
        }
        guard newline > view.startIndex, view[newline - 1] == UInt8(ascii: "\r") else {
            throw HTTP1SyntaxError(description: "a chunk line not ended by CRLF")
        }
        let line = input.readBytes(length: newline - 1 - view.startIndex)!
        input.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// Splits `name: value` into its name and its value without surrounding
    /// whitespace. Folded lines (starting with whitespace), names that are not tokens
    /// and values with control characters are refused.
    static func field(
        _ line: ArraySlice<UInt8>
    ) throws(HTTP1SyntaxError) -> (name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        if let first = line.first, first == 0x20 || first == 0x09 {
            throw HTTP1SyntaxError(description: "a folded header line, which HTTP/1.1 no longer allows")
        }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon != line.startIndex,
            line[..<colon].allSatisfy(isTokenCharacter)
        else {
            throw HTTP1SyntaxError(description: "a header line without a valid name: '\(text(line.prefix(64)))'")
        }
        let value = trimmed(line[(colon + 1)...])
        // Field values may hold visible characters, spaces, tabs and obs-text; a NUL
        // or a lone CR could split the field for a later reader.
        guard !value.contains(where: isControl) else {
            throw HTTP1SyntaxError(description: "a control character in the value of '\(text(line[..<colon]))'")
        }
        return (line[..<colon], value)
    }

    /// A control character other than HTAB.
    static func isControl(_ byte: UInt8) -> Bool {
        (byte < 0x20 && byte != 0x09) || byte == 0x7F
    }

    /// RFC 9110 §5.6.2 `tchar`.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }

    /// Calls `body` with each element of a comma-separated field value, trimmed, empty
    /// ones left out. No array is built: this runs for every Connection field.
    static func forEachElement(of value: ArraySlice<UInt8>, _ body: (ArraySlice<UInt8>) -> Void) {
        var start = value.startIndex
        while start < value.endIndex {
            let end = value[start...].firstIndex(of: UInt8(ascii: ",")) ?? value.endIndex
            let element = trimmed(value[start..<end])
            if !element.isEmpty { body(element) }
            start = end + 1
        }
    }

    /// The number of lines in a section: a capacity for the fields read from it.
    static func lineCount(_ section: [UInt8]) -> Int {
        section.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var start = bytes.startIndex
        var end = bytes.endIndex
        while start < end, bytes[start] == 0x20 || bytes[start] == 0x09 { start += 1 }
        while end > start, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        return bytes[start..<end]
    }

    /// A Content-Length value: digits only, and the same as any earlier one.
    static func contentLength(_ digits: ArraySlice<UInt8>, previous: Int?) throws(HTTP1SyntaxError) -> Int {
        guard !digits.isEmpty, digits.count <= 18, digits.allSatisfy({ $0 &- UInt8(ascii: "0") < 10 }) else {
            throw HTTP1SyntaxError(description: "an invalid Content-Length: '\(text(digits.prefix(32)))'")
        }
        let length = digits.reduce(0) { $0 * 10 + Int($1 &- UInt8(ascii: "0")) }
        if let previous, previous != length {
            throw HTTP1SyntaxError(description: "two different Content-Length values, \(previous) and \(length)")
        }
        return length
    }

    /// The size on a chunk's first line. Chunk extensions (after ';') carry nothing we
    /// use, but must hold no control characters; nothing else may follow the size.
    static func chunkSize(_ line: [UInt8]) throws(HTTP1SyntaxError) -> Int {
        var size = 0
        var digits = 0
        for (index, byte) in line.enumerated() {
            if byte == UInt8(ascii: ";") || byte == 0x20 || byte == 0x09 {
                let rest = trimmed(line[index...])
                guard rest.isEmpty || (rest.first == UInt8(ascii: ";") && !rest.contains(where: isControl)) else {
                    throw HTTP1SyntaxError(description: "an invalid chunk size: '\(text(line.prefix(32)))'")
                }
                break
            }
            let nibble: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = byte - UInt8(ascii: "A") + 10
            default: throw HTTP1SyntaxError(description: "an invalid chunk size: '\(text(line.prefix(32)))'")
            }
            guard size <= Int.max >> 4 else { throw HTTP1SyntaxError(description: "a chunk size too large") }
            size = size << 4 | Int(nibble)
            digits += 1
        }
        guard digits > 0 else { throw HTTP1SyntaxError(description: "an empty chunk size line") }
        return size
    }

    /// Trailer lines as fields.
    static func trailerFields(_ section: [UInt8]) throws(HTTP1SyntaxError) -> HTTPHeaders {
        var fields: [(String, String)] = []
        var lines = HTTP1Lines(section)
        while let line = lines.next() {
            let (name, value) = try field(section[line])
            fields.append((text(name), text(value)))
        }
        return HTTPHeaders(fields)
    }

    static func text<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    /// Bytes a peer sent, for an error message: control characters escaped (`\r`, `\n`,
    /// `\u{1B}`), so a raw newline cannot end the message's line or its quotes.
    static func quoted<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        var result = ""
        for scalar in text(bytes).unicodeScalars {
            switch scalar {
            case "\r": result += "\\r"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                result += "\\u{" + String(scalar.value, radix: 16, uppercase: true) + "}"
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}

/// Finds the end of a head or trailer section as bytes arrive. It remembers how far it
/// has looked, so a section arriving a byte at a time is scanned once, not once per
/// read (which would be quadratic in the head's size).
struct HTTP1SectionScanner {
    /// Bytes already looked at, and where the line being looked at starts (both from
    /// the input's reader index, which does not move until a section is taken).
    private var scanned = 0
    private var lineStart = 0

    /// The section through the empty line that ends it, or nil (consuming nothing)
    /// until all of it has arrived. Refused past `HTTP1Syntax.maximumHeadSize`.
    mutating func take(from input: inout ByteBuffer) throws(HTTP1SyntaxError) -> [UInt8]? {
        let view = input.readableBytesView
        let limit = min(view.count, HTTP1Syntax.maximumHeadSize)
        while scanned < limit {
            let index = view.startIndex + scanned
            if view[index] == UInt8(ascii: "\n") {
                let lineLength = scanned - lineStart
                if lineLength == 0 || (lineLength == 1 && view[view.startIndex + lineStart] == UInt8(ascii: "\r")) {
                    let length = scanned + 1
                    scanned = 0
                    lineStart = 0
                    return input.readBytes(length: length)
                }
                lineStart = scanned + 1
            }
            scanned += 1
        }
        if view.count >= HTTP1Syntax.maximumHeadSize {
            throw HTTP1SyntaxError.headTooLarge
        }
        return nil
    }
}

/// The lines of a section, as index ranges without their CRLF (or bare LF); ends at
/// the empty line.
struct HTTP1Lines {
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

/// What a head's hop-by-hop fields said (RFC 9110 §7.6.1), gathered while it is read.
/// These fields describe one connection, so they never travel on, and neither do the
/// fields Connection names.
struct HopByHopFields {
    var close = false
    var keepAlive = false
    var hasTransferEncoding = false
    /// The last coding Transfer-Encoding lists (the one that frames the body).
    var lastTransferCoding: ArraySlice<UInt8>?
    /// A coding other than chunked (gzip, say), which HTTP/2 cannot carry.
    var otherTransferCoding: String?
    /// Lowercase names of fields Connection lists, to be removed once all are read. A
    /// set: a head may name thousands (see `removeConnectionOptions`).
    var connectionOptions: Set<String> = []
    /// The Upgrade field's value: the protocols a client would switch to.
    var upgrade: String?

    /// Takes the field if its name is hop-by-hop; false for an end-to-end field.
    mutating func take(name: ArraySlice<UInt8>, value: ArraySlice<UInt8>) -> Bool {
        guard let fixed = HopByHop.fixedName(name) else { return false }
        if fixed == "connection" {
            HTTP1Syntax.forEachElement(of: value) { option in
                if HopByHop.equalsIgnoringCase(option, "close") {
                    close = true
                } else if HopByHop.equalsIgnoringCase(option, "keep-alive") {
                    keepAlive = true
                } else if HopByHop.fixedName(option) == nil {
                    connectionOptions.insert(HTTP1Syntax.text(option).lowercased())
                }
            }
        } else if fixed == "upgrade" {
            upgrade = HTTP1Syntax.text(value)
        } else if fixed == "transfer-encoding" {
            hasTransferEncoding = true
            HTTP1Syntax.forEachElement(of: value) { coding in
                lastTransferCoding = coding
                if !HopByHop.equalsIgnoringCase(coding, "chunked") { otherTransferCoding = HTTP1Syntax.text(coding) }
            }
        }
        return true
    }

    /// Leaves out the fields Connection named, with one set lookup per field. Removing
    /// them one option at a time scanned every field per option: a 69 KB head naming
    /// 15,000 options beside 5,000 fields cost 0.2 s of event-loop time.
    func removeConnectionOptions(from fields: inout [(String, String)]) {
        guard !connectionOptions.isEmpty else { return }
        fields.removeAll { connectionOptions.contains($0.0.lowercased()) }
    }

    /// Whether the last transfer coding is chunked.
    var isChunked: Bool {
        lastTransferCoding.map { HopByHop.equalsIgnoringCase($0, "chunked") } ?? false
    }

    /// Whether the connection stays open after this message, for HTTP/1.`minorVersion`.
    func persists(minorVersion: Int) -> Bool {
        minorVersion == 0 ? keepAlive && !close : !close
    }
}

/// Hop-by-hop field names.
enum HopByHop {
    /// The lowercase hop-by-hop name `name` is, if it is one.
    static func fixedName<Bytes: Collection<UInt8>>(_ name: Bytes) -> String? {
        func match(_ candidate: String) -> String? { equalsIgnoringCase(name, candidate) ? candidate : nil }
        switch name.count {
        case 2: return match("te")
        case 7: return match("upgrade")
        case 10: return match("connection") ?? match("keep-alive")
        case 16: return match("proxy-connection")
        case 17: return match("transfer-encoding")
        case 18: return match("proxy-authenticate")
        case 19: return match("proxy-authorization")
        default: return nil
        }
    }

    /// ASCII case-insensitive comparison; `lowercase` must already be lowercase.
    static func equalsIgnoringCase<Bytes: Collection<UInt8>>(_ bytes: Bytes, _ lowercase: String) -> Bool {
        bytes.count == lowercase.utf8.count
            && zip(bytes, lowercase.utf8).allSatisfy { byte, expected in
                byte == expected || (byte &- 0x41 < 26 && byte | 0x20 == expected)
            }
    }
}

extension String {
    /// Whether this field name is `lowercase` (which must be lowercase), ASCII case
    /// ignored: one pass over the bytes, no lowercased copy.
    public func isFieldName(_ lowercase: String) -> Bool {
        HopByHop.equalsIgnoringCase(utf8, lowercase)
    }
}
