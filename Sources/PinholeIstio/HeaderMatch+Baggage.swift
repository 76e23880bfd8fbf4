extension HeaderMatch {
    /// The header OpenTelemetry (W3C Baggage) propagates: `baggage: k1=v1;prop, k2=v2`.
    public static let baggageHeader = "baggage"

    /// `--match-baggage KEY=VALUE`: a regex on the `baggage` header that matches when one
    /// of its members is `KEY=VALUE`, wherever it stands in the comma-separated list, with
    /// the optional spaces and `;properties` the W3C format allows.
    ///
    /// Envoy matches the regex (RE2) against the whole value, so the list around the member
    /// is spelled out; KEY and VALUE are escaped, so a `.` in them means a dot.
    public init(baggage text: String) throws(IstioError) {
        guard let equals = text.firstIndex(of: "=") else {
            throw .invalidHeaderMatch(input: text, reason: "a baggage match is KEY=VALUE, and it has no '='")
        }
        let key = String(text[..<equals])
        let value = String(text[text.index(after: equals)...])
        if let reason = Self.baggageKeyViolation(key) ?? Self.baggageValueViolation(value) {
            throw .invalidHeaderMatch(input: text, reason: reason)
        }
        let blank = "[ \\t]*"
        let member = blank + Self.escapedForRE2(key) + blank + "=" + blank + Self.escapedForRE2(value) + blank
        try self.init(name: Self.baggageHeader, kind: .regex, value: "(.*,)?" + member + "(;[^,]*)?(,.*)?")
    }

    private static func baggageKeyViolation(_ key: String) -> String? {
        if key.isEmpty { return "the baggage key is empty" }
        // RFC 9110 token characters: what W3C Baggage allows in a key.
        let allowed = "!#$%&'*+-.^_`|~"
        if let bad = key.unicodeScalars.first(where: {
            !($0.isASCII
                && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || allowed.unicodeScalars.contains($0)))
        }) {
            return "the baggage key contains '\(bad.escaped(asASCII: true))', which a W3C baggage key cannot"
        }
        return nil
    }

    private static func baggageValueViolation(_ value: String) -> String? {
        if value.isEmpty { return "the baggage value is empty" }
        // W3C baggage-octet: printable ASCII except space, '"', ',', ';' and '\'; others are
        // percent-encoded by the sender, so match the encoded form.
        if let bad = value.unicodeScalars.first(where: {
            !$0.isASCII || $0.value <= 0x20 || $0.value == 0x7F || "\",;\\".unicodeScalars.contains($0)
        }) {
            return "the baggage value contains '\(bad.escaped(asASCII: true))', which senders percent-encode; "
                + "give the encoded form"
        }
        return nil
    }

    /// Like Go's `regexp.QuoteMeta`: every character RE2 gives a meaning is escaped.
    static func escapedForRE2(_ text: String) -> String {
        let special = Set("\\.+*?()|[]{}^$")
        return text.map { special.contains($0) ? "\\" + String($0) : String($0) }.joined()
    }
}
