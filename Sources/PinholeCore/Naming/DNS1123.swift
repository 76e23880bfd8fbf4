/// Kubernetes naming rules (RFC 1123 labels and subdomains, plus RFC 1035 for Service names).
///
/// The `…Violation` functions return nil for a valid name and otherwise the rule it breaks,
/// worded so it can follow "it": the `validate…` functions wrap that into an `InvalidName` that
/// also names the value and gives a valid example. Checking here, before anything is rendered,
/// turns the API server's terse rejection at `kubectl apply` time into a message at start-up.
public enum DNS1123 {
    public static let maxLabelLength = 63
    public static let maxSubdomainLength = 253

    /// A DNS-1123 label: 1-63 of `a-z 0-9 -`, starting and ending with a letter or digit.
    /// Namespaces and tunnel names are labels.
    public static func labelViolation(_ value: String) -> String? {
        if value.isEmpty {
            return "it is empty"
        }
        let length = value.unicodeScalars.count
        if length > maxLabelLength {
            return "it is \(length) characters long, and a DNS-1123 label has at most \(maxLabelLength)"
        }
        if let bad = value.unicodeScalars.first(where: { !isLabelCharacter($0) }) {
            if bad.properties.isUppercase {
                return "it contains uppercase letters, and Kubernetes names are lowercase"
            }
            return "it contains '\(bad.escaped(asASCII: true))', and only lowercase letters a-z, digits 0-9 and '-' "
                + "are allowed"
        }
        if value.hasPrefix("-") {
            return "it starts with '-', and a DNS-1123 label must start with a letter or digit"
        }
        if value.hasSuffix("-") {
            return "it ends with '-', and a DNS-1123 label must end with a letter or digit"
        }
        return nil
    }

    /// A Kubernetes Service name: a DNS-1123 label that also starts with a letter (RFC 1035),
    /// because the API server validates Service names with `NameIsDNS1035Label`.
    public static func serviceNameViolation(_ value: String) -> String? {
        if let violation = labelViolation(value) {
            return violation
        }
        if let first = value.unicodeScalars.first, ("0"..."9").contains(first) {
            return "it starts with a digit, and Kubernetes Service names must start with a letter (RFC 1035)"
        }
        return nil
    }

    /// A DNS-1123 subdomain: dot-separated labels, at most 253 characters in all.
    public static func subdomainViolation(_ value: String) -> String? {
        if value.isEmpty {
            return "it is empty"
        }
        let length = value.unicodeScalars.count
        if length > maxSubdomainLength {
            return "it is \(length) characters long, and a DNS name has at most \(maxSubdomainLength)"
        }
        for label in value.split(separator: ".", omittingEmptySubsequences: false) {
            if label.isEmpty {
                return "it has an empty label (a dot at either end, or two dots in a row)"
            }
            if let violation = labelViolation(String(label)) {
                return "its label '\(label)' is not valid: \(violation)"
            }
        }
        return nil
    }

    public static func validateLabel(_ value: String, kind: String, example: String) throws(InvalidName) {
        if let rule = labelViolation(value) {
            throw InvalidName(kind: kind, value: value, rule: rule, example: example)
        }
    }

    public static func validateServiceName(
        _ value: String,
        kind: String = "service",
        example: String = "my-service"
    ) throws(InvalidName) {
        if let rule = serviceNameViolation(value) {
            throw InvalidName(kind: kind, value: value, rule: rule, example: example)
        }
    }

    public static func validateSubdomain(_ value: String, kind: String, example: String) throws(InvalidName) {
        if let rule = subdomainViolation(value) {
            throw InvalidName(kind: kind, value: value, rule: rule, example: example)
        }
    }

    private static func isLabelCharacter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) || scalar == "-"
    }
}

/// A Kubernetes or DNS name that breaks its naming rule: what the name is for (`kind`:
/// "service", "namespace", "tunnel host"), the rule it breaks, and a valid example.
public struct InvalidName: Error, Sendable, Equatable, CustomStringConvertible {
    public let kind: String
    public let value: String
    public let rule: String
    public let example: String

    public init(kind: String, value: String, rule: String, example: String) {
        self.kind = kind
        self.value = value
        self.rule = rule
        self.example = example
    }

    public var description: String { "\(kind) '\(value)' is not valid: \(rule); for example '\(example)'" }
}
