import Foundation
import PinholeTLS

/// Who owns a tunnel: the SHA-256 of the token that registered it. The token itself
/// is never stored or logged.
struct TokenDigest: Hashable, Sendable {
    let hex: String

    init(token: String) {
        let hasher = SHA256Hasher()
        hasher.update(token)
        hex = hasher.finalize()
    }

    /// A digest as the registry file keeps it.
    init(hex: String) {
        self.hex = hex
    }
}

/// Checks agent tokens in constant time: every allowed digest is compared in full,
/// so timing says nothing about how close a guess was or which token matched.
struct TokenAuthenticator: Sendable {
    private let allowed: [TokenDigest]

    init(tokens: [String]) {
        allowed = tokens.map(TokenDigest.init(token:))
    }

    /// Every token's digest: the owners the registry may keep names for.
    var owners: Set<TokenDigest> { Set(allowed) }

    func owner(of token: String) -> TokenDigest? {
        let candidate = TokenDigest(token: token)
        var match: TokenDigest?
        for digest in allowed where Self.constantTimeEqual(digest.hex, candidate.hex) {
            match = digest
        }
        return match
    }

    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let left = Array(lhs.utf8)
        let right = Array(rhs.utf8)
        guard left.count == right.count else { return false }
        var difference: UInt8 = 0
        for index in left.indices { difference |= left[index] ^ right[index] }
        return difference == 0
    }
}
