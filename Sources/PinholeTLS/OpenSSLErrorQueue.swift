internal import COpenSSL

/// OpenSSL reports failures through a thread-local queue. Every call site clears it
/// before the call and drains it into text after a failure, so a message never
/// carries stale errors from an earlier call.
enum OpenSSLErrorQueue {
    static func clear() {
        // The queue is almost always empty already. Peeking costs a thread-local lookup;
        // clearing costs that plus a pass over all sixteen slots, on every record read
        // and written (1.5% of the agent's CPU in a bulk upload).
        if ERR_peek_error() != 0 { ERR_clear_error() }
    }

    /// Drains the queue into one line such as "wrong version number".
    static func drain(fallback: String = "no further detail from OpenSSL") -> String {
        text(of: drainReasons(), fallback: fallback)
    }

    /// Drained reasons as one line, or `fallback` when there were none.
    static func text(of reasons: [(reason: Int32, text: String)], fallback: String) -> String {
        reasons.isEmpty ? fallback : reasons.map(\.text).joined(separator: "; ")
    }

    /// Drains the queue, keeping each entry's reason code for callers that branch on it.
    static func drainReasons() -> [(reason: Int32, text: String)] {
        var reasons: [(reason: Int32, text: String)] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            reasons.append((ERR_GET_REASON(code), describe(code)))
        }
        return reasons
    }

    /// OpenSSL's reason alone: the library name it can add ("SSL routines") means
    /// nothing to the person reading, and a parenthesis inside a message's own reads badly.
    private static func describe(_ code: UInt) -> String {
        if let reason = ERR_reason_error_string(code) { return String(cString: reason) }
        var text = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &text, text.count)
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Throws `TLSError.openSSL` unless `result` is 1, OpenSSL's usual success value.
    static func check(_ result: Int32, _ operation: @autoclosure () -> String) throws(TLSError) {
        guard result == 1 else { throw TLSError.openSSL(operation: operation(), reason: drain()) }
    }

    /// Unwraps a pointer that OpenSSL returns, or throws with the queue's text.
    static func check<T>(_ value: T?, _ operation: @autoclosure () -> String) throws(TLSError) -> T {
        guard let value else { throw TLSError.openSSL(operation: operation(), reason: drain()) }
        return value
    }
}
