import Foundation
import NIOCore
import PinholeCore

/// Wall-clock times for log lines. The calendar part is worked out once per second
/// (`localtime_r`, `gmtime_r`) and kept as bytes; no Foundation date formatting.
struct LogClock {
    /// An instant as seconds and nanoseconds since 1970.
    struct WallTime: Equatable {
        var seconds: Int
        var nanoseconds: Int
    }

    private var localSecond = Int.min
    private var local: [UInt8] = []
    private var utcSecond = Int.min
    private var utc: [UInt8] = []

    /// Wall-clock minus monotonic time, in nanoseconds; read again once a second, so
    /// that every line of that second converts its instants the same way.
    private var offset = 0
    private var offsetReadAt: NIODeadline?

    /// The wall-clock time of `instant`, a monotonic deadline (`NIODeadline.now()` when
    /// something happened), given the monotonic time `now`.
    mutating func wallTime(of instant: NIODeadline, now: NIODeadline = .now()) -> WallTime {
        if offsetReadAt.map({ now - $0 > .seconds(1) || now < $0 }) ?? true {
            var clock = timespec()
            clock_gettime(CLOCK_REALTIME, &clock)
            let monotonic = NIODeadline.now()
            offset = Int(clock.tv_sec) * 1_000_000_000 + Int(clock.tv_nsec) - Int(monotonic.uptimeNanoseconds)
            offsetReadAt = now
        }
        let total = Int(instant.uptimeNanoseconds) + offset
        return WallTime(seconds: total / 1_000_000_000, nanoseconds: total % 1_000_000_000)
    }

    /// `HH:MM:SS` in local time.
    mutating func appendLocalTime(_ time: WallTime, to line: inout [UInt8]) {
        if time.seconds != localSecond {
            localSecond = time.seconds
            var seconds = time_t(time.seconds)
            var parts = tm()
            localtime_r(&seconds, &parts)
            local.removeAll(keepingCapacity: true)
            RFC3339.appendTimeOfDay(parts, to: &local)
        }
        line.append(contentsOf: local)
    }

    /// RFC 3339 in UTC, with milliseconds: `2026-12-07T01:08:37.123Z`.
    mutating func appendRFC3339(_ time: WallTime, to line: inout [UInt8]) {
        if time.seconds != utcSecond {
            utcSecond = time.seconds
            utc.removeAll(keepingCapacity: true)
            RFC3339.appendSecond(time.seconds, to: &utc)
        }
        line.append(contentsOf: utc)
        RFC3339.appendMilliseconds(time.nanoseconds / 1_000_000, to: &line)
    }
}
