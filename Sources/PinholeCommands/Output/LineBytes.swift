import PinholeCore

// Writing log lines as bytes, straight into the output buffer (the numbers, JSON strings
// and padding are PinholeCore's `TextBytes`, which the inspector's feed shares). Widths
// count characters (Unicode scalars), which is what a terminal column is for the text a
// log line holds.

extension Array where Element == UInt8 {
    mutating func append(_ text: String) {
        append(contentsOf: text.utf8)
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
}

extension String {
    /// Terminal columns, counted as Unicode scalars.
    var columns: Int {
        var count = 0
        for byte in utf8 where byte & 0xC0 != 0x80 { count += 1 }
        return count
    }
}
