import PinholeCore
import Testing

@testable import PinholeCommands

@Suite("Log line bytes")
struct LineBytesTests {
    static func line(_ write: (inout [UInt8]) -> Void) -> String {
        var bytes: [UInt8] = []
        write(&bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("padding of any width, shorter or longer than the run it is copied from")
    func padding() {
        #expect(Self.line { $0.appendSpaces(0) } == "")
        #expect(Self.line { $0.appendSpaces(-3) } == "")
        for count in [1, 63, 64, 65, 200] {
            #expect(Self.line { $0.appendSpaces(count) } == String(repeating: " ", count: count))
        }
        #expect(Self.line { $0.append("ab", paddedTo: 130) } == "ab" + String(repeating: " ", count: 128))
    }

    @Test("numbers right-aligned in their width, negative ones and zero too")
    func numbers() {
        #expect(Self.line { $0.append(decimal: 0) } == "0")
        #expect(Self.line { $0.append(decimal: 1234, width: 6) } == "  1234")
        #expect(Self.line { $0.append(decimal: -56, width: 5) } == "  -56")
        #expect(Self.line { $0.append(decimal: Int.max) } == String(Int.max))
        #expect(Self.line { $0.append(decimal: 7, width: 70) } == String(repeating: " ", count: 69) + "7")
    }
}
