// Writing log lines as bytes, straight into the output buffer: no `String(format:)`,
// no formatter objects, no intermediate strings. Widths count characters (Unicode
// scalars), which is what a terminal column is for the text a log line holds.

/// What `appendSpaces` copies from.
private let lineSpaces: StaticString = "                                                                "

extension Array where Element == UInt8 {
    mutating func append(ascii text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    mutating func append(_ text: String) {
        append(contentsOf: text.utf8)
    }

    /// Copied from a run of spaces rather than appended one by one from
    /// `repeatElement` (a generic sequence): padding showed in profiles of the request log.
    mutating func appendSpaces(_ count: Int) {
        var left = count
        while left > 0 {
            let run = Swift.min(left, lineSpaces.utf8CodeUnitCount)
            lineSpaces.withUTF8Buffer { append(contentsOf: UnsafeBufferPointer(rebasing: $0.prefix(run))) }
            left -= run
        }
    }

    /// `text` left-aligned in `width` columns.
    mutating func append(_ text: String, paddedTo width: Int) {
        append(text)
        appendSpaces(width - text.columns)
    }

    /// `text` in at most `width` columns, with control characters shown as `?`; a longer
    /// text is cut and ends in `…`. Returns the columns written.
    @discardableResult
    mutating func append(_ text: String, clippedTo width: Int) -> Int {
        let clip = text.columns > width
        let keep = clip ? width - 1 : width
        var written = 0
        for byte in text.utf8 {
            let starts = byte & 0xC0 != 0x80
            if starts {
                if written == keep { break }
                written += 1
            }
            append(byte < 0x20 || byte == 0x7F ? UInt8(ascii: "?") : byte)
        }
        if clip {
            append(ascii: "…")
            written += 1
        }
        return written
    }

    /// `text` with control characters written as escapes (`\n`), so that a reason quoting
    /// what a peer sent cannot break the line.
    mutating func append(escapingControls text: String) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\n"): append(ascii: "\\n")
            case UInt8(ascii: "\r"): append(ascii: "\\r")
            case 0..<0x20, 0x7F: append(UInt8(ascii: "?"))
            default: append(byte)
            }
        }
    }

    /// `value` in decimal, right-aligned in `width` columns.
    mutating func append(_ value: Int, width: Int = 0) {
        var magnitude = value.magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        let length = digits + (value < 0 ? 1 : 0)
        appendSpaces(width - length)
        if value < 0 { append(UInt8(ascii: "-")) }
        let end = count + digits
        appendSpaces(digits)  // room for the digits, written below from the last one back
        var index = end - 1
        repeat {
            self[index] = UInt8(ascii: "0") + UInt8(magnitude % 10)
            magnitude /= 10
            index -= 1
        } while magnitude > 0
    }

    /// `value` with exactly `digits` digits, zero-padded (for clock fields).
    mutating func append(_ value: Int, zeroPaddedTo digits: Int) {
        var divisor = 1
        for _ in 1..<digits { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            append(UInt8(ascii: "0") + UInt8((rest / divisor) % 10))
            rest %= divisor
            divisor /= 10
        }
    }

    /// `tenths / 10` with one decimal: `12.3`.
    mutating func append(tenths: Int) {
        append(tenths / 10)
        append(UInt8(ascii: "."))
        append(UInt8(ascii: "0") + UInt8(tenths.magnitude % 10))
    }

    /// `text` as a JSON string, quotes included (RFC 8259 §7).
    mutating func append(jsonString text: String) {
        append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append(ascii: "\\\"")
            case UInt8(ascii: "\\"): append(ascii: "\\\\")
            case UInt8(ascii: "\n"): append(ascii: "\\n")
            case UInt8(ascii: "\r"): append(ascii: "\\r")
            case UInt8(ascii: "\t"): append(ascii: "\\t")
            case 0..<0x20:
                append(ascii: "\\u00")
                append(hexDigit(byte >> 4))
                append(hexDigit(byte & 0xF))
            default: append(byte)
            }
        }
        append(UInt8(ascii: "\""))
    }

    private func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}

extension String {
    /// Terminal columns, counted as Unicode scalars.
    var columns: Int {
        var count = 0
        for byte in utf8 where byte & 0xC0 != 0x80 { count += 1 }
        return count
    }
}
