import Foundation
import NIOConcurrencyHelpers
import NIOCore
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
}

/// Checks agent tokens in constant time: every allowed digest is compared in full,
/// so timing says nothing about how close a guess was or which token matched.
struct TokenAuthenticator: Sendable {
    private let allowed: [TokenDigest]

    init(tokens: [String]) {
        allowed = tokens.map(TokenDigest.init(token:))
    }

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

/// Slows down addresses that keep presenting bad tokens: each failure doubles the
/// wait before their next attempt is even looked at (0.5 s, 1 s, 2 s, ... up to 8 s).
/// Failures are forgotten after 15 minutes of quiet.
final class FailureThrottle: Sendable {
    private struct Record {
        var failures: Int
        var last: NIODeadline
    }

    private let records = NIOLockedValueBox<[String: Record]>([:])
    private static let forgetAfter = TimeAmount.minutes(15)
    private static let maximumDelay = TimeAmount.seconds(8)
    private static let maximumTracked = 10_000

    func delay(for address: String) -> TimeAmount {
        let now = NIODeadline.now()
        return records.withLockedValue { records in
            guard let record = records[address], now - record.last < Self.forgetAfter else { return .zero }
            let delay = TimeAmount.milliseconds(500) * (1 << min(record.failures - 1, 10))
            return min(delay, Self.maximumDelay)
        }
    }

    func recordFailure(for address: String) {
        let now = NIODeadline.now()
        records.withLockedValue { records in
            if records.count >= Self.maximumTracked {
                records = records.filter { now - $0.value.last < Self.forgetAfter }
            }
            var record = records[address] ?? Record(failures: 0, last: now)
            if now - record.last >= Self.forgetAfter { record.failures = 0 }
            record.failures += 1
            record.last = now
            records[address] = record
        }
    }

    func recordSuccess(for address: String) {
        _ = records.withLockedValue { $0.removeValue(forKey: address) }
    }
}
