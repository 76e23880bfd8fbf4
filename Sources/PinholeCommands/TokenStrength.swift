/// The command-line check of a token's length, shared by `agent` and `relay`: a short
/// token is refused before anything starts, with a way to make a good one.
enum TokenStrength {
    static let minimumLength = 16
    static let advice = "use at least \(minimumLength), such as the output of `openssl rand -hex 24`"

    /// Why `token` (from `source`, such as `--token`) is too weak, or nil when it is fine.
    /// The token itself is never part of the message.
    static func problem(_ token: String, from source: String) -> String? {
        guard token.count < minimumLength else { return nil }
        let length = token.count == 1 ? "1 character" : "\(token.count) characters"
        return "\(source): a token of \(length) is too easy to guess; \(advice)"
    }
}
