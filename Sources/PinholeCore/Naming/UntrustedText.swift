/// Text a peer chose (a relay's refusal message, a certificate's names, an agent's
/// software string), made safe to print or log: control characters (an escape
/// sequence could rewrite the terminal, a newline forge a log line) and bidirectional
/// overrides (which reorder what is shown) become `\u{…}` escapes, and overlong text is
/// cut.
public enum UntrustedText {
    public static func escaped(_ text: String, limit: Int = 512) -> String {
        var result = ""
        var count = 0
        for scalar in text.unicodeScalars {
            if count == limit {
                result += "…"
                break
            }
            count += 1
            if isUnsafe(scalar) {
                result += "\\u{" + String(scalar.value, radix: 16) + "}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    private static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00..<0x20, 0x7F..<0xA0: return true  // C0 (tab and newline too), DEL, C1
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi marks and overrides
        default: return false
        }
    }
}
