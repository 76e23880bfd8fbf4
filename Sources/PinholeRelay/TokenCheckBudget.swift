import NIOConcurrencyHelpers
import NIOCore
import PinholeCore

/// How many token checks an address group (an IPv4 address, an IPv6 /64) may have: a
/// bucket of `burst` checks, refilled one per `refillInterval`, shared by every
/// connection from the group. With the defaults that is at most 10 checks in any 5 s,
/// however many connections it opens (a delay per connection let 60 parallel hellos
/// all be checked within 0.7 s).
///
/// A check that finds a valid token gives its unit back, so agents that share a NAT
/// with a guesser are not charged for their own hellos, and nothing delays a hello
/// while the bucket has a unit. A hello that finds it empty is not checked; the
/// relay tells the agent to wait.
///
/// The table holds at most `capacity` groups, forgetting the one added longest ago to
/// make room: one dictionary lookup per hello, never a scan. A forgotten group starts
/// again with a full bucket.
final class TokenCheckBudget: Sendable {
    struct Policy: Sendable {
        var burst = 5
        var refillInterval = TimeAmount.seconds(1)
        var capacity = 16_384

        init(burst: Int = 5, refillInterval: TimeAmount = .seconds(1), capacity: Int = 16_384) {
            self.burst = burst
            self.refillInterval = refillInterval
            self.capacity = capacity
        }

        /// At most `checks` in any 5 s: half at once, the rest spread over the 5 s.
        init(checksPer5Seconds checks: Int) {
            let burst = max(1, checks / 2)
            self.init(burst: burst, refillInterval: .milliseconds(5_000 / Int64(max(1, checks - burst))))
        }
    }

    enum Decision: Equatable {
        /// Check the token; `refund` if it is valid.
        case check
        /// Refuse without checking; the next unit comes after this long.
        case wait(TimeAmount)
    }

    private struct Bucket {
        var available: Int
        var refilledAt: NIODeadline
    }

    private struct Table {
        var buckets: [AddressGroup: Bucket] = [:]
        /// Groups in the order they were added, a ring once full; `oldest` is next to go.
        var order: [AddressGroup] = []
        var oldest = 0
    }

    let policy: Policy
    private let table = NIOLockedValueBox(Table())

    init(policy: Policy = Policy()) {
        precondition(policy.burst > 0 && policy.refillInterval > .zero && policy.capacity > 0)
        self.policy = policy
    }

    /// Takes a unit for `group`'s check, if it has one.
    func reserve(for group: AddressGroup, now: NIODeadline = .now()) -> Decision {
        table.withLockedValue { table in
            var bucket = table.buckets[group] ?? add(group, to: &table, now: now)
            let interval = policy.refillInterval.nanoseconds
            let units = (now - bucket.refilledAt).nanoseconds / interval
            if units > 0 {
                bucket.available = min(policy.burst, bucket.available + Int(clamping: units))
                bucket.refilledAt =
                    bucket.available == policy.burst ? now : bucket.refilledAt + .nanoseconds(units * interval)
            }
            defer { table.buckets[group] = bucket }
            guard bucket.available > 0 else {
                return .wait(.nanoseconds(interval) - (now - bucket.refilledAt))
            }
            bucket.available -= 1
            return .check
        }
    }

    /// Gives back the unit a valid token's check took.
    func refund(for group: AddressGroup) {
        table.withLockedValue { table in
            guard var bucket = table.buckets[group] else { return }
            bucket.available = min(policy.burst, bucket.available + 1)
            table.buckets[group] = bucket
        }
    }

    /// The number of groups tracked now.
    var trackedGroups: Int { table.withLockedValue { $0.buckets.count } }

    private func add(_ group: AddressGroup, to table: inout Table, now: NIODeadline) -> Bucket {
        if table.order.count < policy.capacity {
            table.order.append(group)
        } else {
            table.buckets[table.order[table.oldest]] = nil
            table.order[table.oldest] = group
            table.oldest = (table.oldest + 1) % policy.capacity
        }
        return Bucket(available: policy.burst, refilledAt: now)
    }
}
