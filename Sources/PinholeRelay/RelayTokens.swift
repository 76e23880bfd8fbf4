import Foundation

/// The tokens agents may use: given by the operator, or, when none is given, one kept
/// beside the relay's certificate (made on first start, mode 0600).
public enum RelayTokens {
    public struct Resolved: Sendable {
        public let tokens: [String]
        /// What the relay's banner shows in place of the token: never a token that the
        /// operator gave, and a generated one only on the start that made it.
        public let banner: String
    }

    /// Tokens from `given` (`--token`), `file` (one per line) and `environment`
    /// (`PINHOLE_TOKENS`, comma- or space-separated); when there are none, the token in
    /// `relay.token` in `directory`, made there if missing.
    public static func resolve(
        given: [String], file: String?, environment: String?, directory: String
    ) throws(RelayError) -> Resolved {
        let list = try operatorTokens(given: given, file: file, environment: environment)
        if !list.isEmpty { return Resolved(tokens: list, banner: "<your token>") }
        return try stored(in: directory.isEmpty ? "." : directory)
    }

    /// The tokens the operator gave, from all three places; reading them changes nothing.
    public static func operatorTokens(
        given: [String], file: String?, environment: String?
    ) throws(RelayError)
        -> [String]
    {
        var list = given
        if let file {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw RelayError.configuration("--token-file \(file) cannot be read")
            }
            list += text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                !$0.isEmpty
            }
        }
        if let environment {
            list += environment.split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
        }
        return list
    }

    /// The token kept in `directory/relay.token`, made now if there is none.
    static func stored(in directory: String) throws(RelayError) -> Resolved {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/relay.token"
        if let stored = try? String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(
            in: .whitespacesAndNewlines), !stored.isEmpty
        {
            return Resolved(tokens: [stored], banner: "<the token in \(path) on the relay>")
        }
        let token = generate()
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else { throw RelayError.configuration("cannot create \(path) for the generated token") }
        FileHandle(fileDescriptor: descriptor, closeOnDealloc: true).write(Data((token + "\n").utf8))
        // Shown once, now: it is the only way to hand it to the laptop.
        return Resolved(tokens: [token], banner: token)
    }

    /// A random token of 32 characters from an alphabet without look-alikes (0/O, 1/l/I).
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        return String((0..<32).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] })
    }
}
