/// The SHA-256 digest of a certificate's DER encoding, written `sha256:<64 hex digits>`.
///
/// This is the form the relay prints and the agent's `--pin` takes. Parsing is
/// lenient about case and the colons `openssl x509 -fingerprint` puts between bytes.
public struct CertificateFingerprint: Hashable, Sendable, CustomStringConvertible {
    public static let prefix = "sha256:"

    /// The 32 digest bytes.
    public let bytes: [UInt8]

    public init(digest: [UInt8]) throws(TLSError) {
        guard digest.count == 32 else {
            throw TLSError.invalidConfiguration("a sha256 fingerprint has 32 bytes, not \(digest.count)")
        }
        self.bytes = digest
    }

    public init(parsing text: String) throws(TLSError) {
        let trimmed = text.trimmingWhitespace()
        guard trimmed.lowercased().hasPrefix(Self.prefix) else {
            throw TLSError.invalidConfiguration(
                "the pin '\(trimmed)' must start with 'sha256:' followed by 64 hex digits, as the relay prints it"
            )
        }
        let hex = trimmed.dropFirst(Self.prefix.count).filter { $0 != ":" }
        var digest: [UInt8] = []
        digest.reserveCapacity(32)
        var high: UInt8?
        for character in hex {
            guard let nibble = character.hexDigitValue.map(UInt8.init) else {
                throw TLSError.invalidConfiguration("the pin '\(trimmed)' contains '\(character)', which is not hex")
            }
            if let first = high {
                digest.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        guard high == nil, digest.count == 32 else {
            throw TLSError.invalidConfiguration(
                "the pin '\(trimmed)' must have 64 hex digits after 'sha256:', it has \(hex.count)"
            )
        }
        self.bytes = digest
    }

    public var description: String {
        Self.prefix + lowercaseHex(bytes)
    }
}

/// `bytes` as lowercase hex digits, two per byte.
func lowercaseHex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(bytes.underestimatedCount * 2)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
    }
    return String(decoding: text, as: UTF8.self)
}

extension String {
    func trimmingWhitespace() -> Substring {
        let isSpace: (Character) -> Bool = { $0.isWhitespace }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return self[start...end]
    }
}
