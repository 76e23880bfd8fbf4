import Testing

@testable import PinholeCore

@Suite("Text written as bytes")
struct TextBytesTests {
    static func text(_ write: (inout [UInt8]) -> Void) -> String {
        var bytes: [UInt8] = []
        write(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("RFC 3339 in UTC with milliseconds, whole and in its two parts")
    func rfc3339() {
        #expect(RFC3339.format(1_796_612_917.123_4) == "2026-12-07T03:08:37.123Z")
        #expect(RFC3339.format(0.5) == "1970-01-01T00:00:00.500Z")
        #expect(
            Self.text {
                RFC3339.appendSecond(1_796_612_917, to: &$0)
                RFC3339.appendMilliseconds(7, to: &$0)
            } == "2026-12-07T03:08:37.007Z")
    }

    @Test("decimals, right-aligned or not; tenths keep the sign of a value under one")
    func numbers() {
        #expect(Self.text { $0.append(decimal: -1234) } == "-1234")
        #expect(Self.text { $0.append(decimal: 42, width: 5) } == "   42")
        #expect(Self.text { $0.append(tenths: 123) } == "12.3")
        #expect(Self.text { $0.append(tenths: -5) } == "-0.5")
        #expect(Self.text { $0.append(7, zeroPaddedTo: 3) } == "007")
    }

    @Test("JSON strings escape quotes, backslashes and control characters, and keep the rest")
    func jsonStrings() {
        #expect(Self.text { $0.append(jsonString: "a\"b\\c\n\u{1}é") } == #""a\"b\\c\n\u0001é""#)
    }
}
