import Foundation

/// RFC 3339 times in UTC with milliseconds, `2026-12-07T01:08:37.123Z`, as the JSON log
/// and the inspector write them, written as bytes (see `TextBytes`).
public enum RFC3339 {
    public static func format(_ secondsSince1970: Double) -> String {
        var bytes: [UInt8] = []
        append(secondsSince1970, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func append(_ secondsSince1970: Double, to bytes: inout [UInt8]) {
        let seconds = Int(secondsSince1970.rounded(.down))
        appendSecond(seconds, to: &bytes)
        appendMilliseconds(Int((secondsSince1970 - Double(seconds)) * 1000), to: &bytes)
    }

    /// `2026-12-07T01:08:37`: the part that changes once a second, which the request log
    /// works out once for all the lines of that second.
    public static func appendSecond(_ secondsSince1970: Int, to bytes: inout [UInt8]) {
        var seconds = time_t(secondsSince1970)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        bytes.append(Int(parts.tm_year) + 1900, zeroPaddedTo: 4)
        bytes.append(UInt8(ascii: "-"))
        bytes.append(Int(parts.tm_mon) + 1, zeroPaddedTo: 2)
        bytes.append(UInt8(ascii: "-"))
        bytes.append(Int(parts.tm_mday), zeroPaddedTo: 2)
        bytes.append(UInt8(ascii: "T"))
        appendTimeOfDay(parts, to: &bytes)
    }

    /// `.123Z`: what follows `appendSecond`.
    public static func appendMilliseconds(_ milliseconds: Int, to bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "."))
        bytes.append(milliseconds, zeroPaddedTo: 3)
        bytes.append(UInt8(ascii: "Z"))
    }

    /// `HH:MM:SS` of `parts`: also the text log's time column, in local time.
    public static func appendTimeOfDay(_ parts: tm, to bytes: inout [UInt8]) {
        bytes.append(Int(parts.tm_hour), zeroPaddedTo: 2)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(Int(parts.tm_min), zeroPaddedTo: 2)
        bytes.append(UInt8(ascii: ":"))
        bytes.append(Int(parts.tm_sec), zeroPaddedTo: 2)
    }
}
