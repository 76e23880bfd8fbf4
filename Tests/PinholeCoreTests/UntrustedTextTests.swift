import Testing

@testable import PinholeCore

@Suite("Untrusted text is escaped before it is printed or logged")
struct UntrustedTextTests {
    @Test("escape sequences, newlines and bidi overrides become visible escapes; plain text is kept")
    func escapes() {
        #expect(UntrustedText.escaped("name taken: 'demo' (é, ü)") == "name taken: 'demo' (é, ü)")
        #expect(UntrustedText.escaped("\u{1B}]0;owned\u{07}red") == "\\u{1b}]0;owned\\u{7}red")
        #expect(UntrustedText.escaped("ok\nrelay: fake line\r") == "ok\\u{a}relay: fake line\\u{d}")
        #expect(UntrustedText.escaped("abc\u{202E}fdp.exe") == "abc\\u{202e}fdp.exe")
        #expect(UntrustedText.escaped("\u{9B}31m") == "\\u{9b}31m")
    }

    @Test("overlong text is cut")
    func cut() {
        #expect(UntrustedText.escaped(String(repeating: "a", count: 1_000), limit: 10) == "aaaaaaaaaa…")
    }
}
