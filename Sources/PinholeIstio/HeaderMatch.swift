/// The request header that marks traffic for the developer's laptop, as an Istio `StringMatch`.
///
/// Written on the command line as `x-user=debug` (exact), `x-user^=dev-` (prefix) or
/// `x-user~^dev-.*` (regex). The name is lowercased because Envoy and Istio match lowercase
/// header names only. `^` and `~` are legal in HTTP header names, but Pinhole reserves them as
/// operators so that the first `=` or `~` always ends the name, without escaping.
public struct HeaderMatch: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case exact, prefix, regex
    }

    public let name: String
    public let kind: Kind
    public let value: String

    /// `x-user=debug`: nothing in a cluster sends it unless a developer adds it on purpose.
    public static let `default` = HeaderMatch(checkedName: "x-user", kind: .exact, value: "debug")

    public init(name: String, kind: Kind, value: String) throws(IstioError) {
        let lowered = name.lowercased()
        let input = Self.format(name: lowered, kind: kind, value: value)
        if let reason = Self.nameViolation(lowered) ?? Self.valueViolation(value, kind: kind) {
            throw .invalidHeaderMatch(input: input, reason: reason)
        }
        self.init(checkedName: lowered, kind: kind, value: value)
    }

    /// Parses `NAME=VALUE`, `NAME^=PREFIX` or `NAME~REGEX`.
    public init(parsing text: String) throws(IstioError) {
        guard let operatorIndex = text.firstIndex(where: { $0 == "=" || $0 == "~" }) else {
            throw .invalidHeaderMatch(input: text, reason: "it has no '=', '^=' or '~' between name and value")
        }
        var name = text[..<operatorIndex]
        let value = String(text[text.index(after: operatorIndex)...])
        let kind: Kind
        if text[operatorIndex] == "~" {
            kind = .regex
        } else if name.hasSuffix("^") {
            kind = .prefix
            name = name.dropLast()
        } else {
            kind = .exact
        }
        let lowered = name.lowercased()
        if let reason = Self.nameViolation(lowered) ?? Self.valueViolation(value, kind: kind) {
            throw .invalidHeaderMatch(input: text, reason: reason)
        }
        self.init(checkedName: lowered, kind: kind, value: value)
    }

    private init(checkedName: String, kind: Kind, value: String) {
        self.name = checkedName
        self.kind = kind
        self.value = value
    }

    /// The command-line form, which `init(parsing:)` reads back.
    public var description: String {
        Self.format(name: name, kind: kind, value: value)
    }

    private static func format(name: String, kind: Kind, value: String) -> String {
        switch kind {
        case .exact: return name + "=" + value
        case .prefix: return name + "^=" + value
        case .regex: return name + "~" + value
        }
    }

    // Istio's HTTPMatchRequest documents that header matches with these keys are ignored,
    // so a rule using one would silently match every request.
    private static let ignoredByIstio: Set<String> = ["uri", "scheme", "method", "authority"]

    private static func nameViolation(_ name: String) -> String? {
        if name.isEmpty {
            return "the header name is empty"
        }
        if let bad = name.unicodeScalars.first(where: { !isNameCharacter($0) }) {
            if bad == "^" || bad == "~" {
                return "the header name contains '\(bad)', which Pinhole reserves for the match operators"
            }
            return "the header name contains '\(bad.escaped(asASCII: true))', "
                + "which is not allowed in an HTTP header name"
        }
        if ignoredByIstio.contains(name) {
            return "Istio ignores header matches named 'uri', 'scheme', 'method' and 'authority', "
                + "so this rule would catch every request; pick a custom header such as x-user"
        }
        return nil
    }

    private static func valueViolation(_ value: String, kind: Kind) -> String? {
        if value.isEmpty {
            return "the value is empty"
        }
        if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "the value contains control characters, which cannot appear in a header value"
        }
        switch kind {
        case .exact, .prefix:
            if let first = value.first, let last = value.last, first.isWhitespace || last.isWhitespace {
                return "the value starts or ends with whitespace, which HTTP strips from header values, "
                    + "so it would never match"
            }
            return nil
        case .regex:
            return regexViolation(value)
        }
    }

    // Envoy evaluates header regexes with RE2. Swift's engine accepts a superset of RE2's
    // syntax, so compiling here catches typos, and the common constructs RE2 lacks are refused
    // by name (istiod would reject them at apply time with a Go regexp error).
    private static let unsupportedByRE2: [(token: String, feature: String)] = [
        ("(?=", "lookahead"), ("(?!", "negative lookahead"), ("(?<=", "lookbehind"),
        ("(?<!", "negative lookbehind"), ("(?>", "atomic groups"),
    ]

    private static func regexViolation(_ pattern: String) -> String? {
        for (token, feature) in unsupportedByRE2 where pattern.contains(token) {
            return "the regex uses \(feature) ('\(token)'), which RE2, Envoy's regex engine, does not support"
        }
        if hasBackreference(pattern) {
            return "the regex uses a backreference, which RE2, Envoy's regex engine, does not support"
        }
        do {
            _ = try Regex(pattern)
        } catch {
            return "the regex does not compile (\(error)); note that it must match the whole header value"
        }
        return nil
    }

    /// `\1` … `\9` or `\k<name>`, skipping escaped backslashes.
    private static func hasBackreference(_ pattern: String) -> Bool {
        var escaped = false
        for character in pattern {
            if escaped {
                if ("1"..."9").contains(character) || character == "k" {
                    return true
                }
                escaped = false
            } else if character == "\\" {
                escaped = true
            }
        }
        return false
    }

    // RFC 9110 token characters, minus the two Pinhole uses as operators; lowercase only,
    // since names are lowercased before they are checked.
    private static func isNameCharacter(_ scalar: Unicode.Scalar) -> Bool {
        if ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) {
            return true
        }
        return "!#$%&'*+-.`|_".unicodeScalars.contains(scalar)
    }
}
