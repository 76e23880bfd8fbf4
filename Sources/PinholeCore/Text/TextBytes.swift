// Machine-read text written as bytes, straight into the buffer that goes out: no
// `String(format:)`, no formatter objects, no intermediate strings. The request log's
// lines and the inspector's live feed both write one record per request with these.
// Every method has an argument label, so none competes with `append(_: UInt8)` (the
// zero-padded one's is its second).

/// What `appendSpaces` copies from.
private let spaces: StaticString = "                                                                "

extension Array where Element == UInt8 {
    public mutating func append(ascii text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    /// Copied from a run of spaces rather than appended one by one from
    /// `repeatElement` (a generic sequence): padding showed in profiles of the request log.
    public mutating func appendSpaces(_ count: Int) {
        var left = count
        while left > 0 {
            let run = Swift.min(left, spaces.utf8CodeUnitCount)
            spaces.withUTF8Buffer { append(contentsOf: UnsafeBufferPointer(rebasing: $0.prefix(run))) }
            left -= run
        }
    }

    /// `value` in decimal, right-aligned in `width` columns.
    public mutating func append(decimal value: Int, width: Int = 0) {
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

    /// `value` with exactly `digits` digits, zero-padded (for clock fields): a value of
    /// more digits keeps its last ones.
    public mutating func append(_ value: Int, zeroPaddedTo digits: Int) {
        precondition(digits >= 1 && value >= 0, "a zero-padded field is at least one digit, of a value not negative")
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
    public mutating func append(tenths: Int) {
        if tenths < 0 && tenths > -10 { append(UInt8(ascii: "-")) }
        append(decimal: tenths / 10)
        append(UInt8(ascii: "."))
        append(UInt8(ascii: "0") + UInt8(tenths.magnitude % 10))
    }

    /// `text` as a JSON string, quotes included (RFC 8259 §7).
    public mutating func append(jsonString text: String) {
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
                append(Self.hexDigit(byte >> 4))
                append(Self.hexDigit(byte & 0xF))
            default: append(byte)
            }
        }
        append(UInt8(ascii: "\""))
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
