import ArgumentParser
import PinholeCore
import PinholeInspector

/// `--inspect ADDR|off`: where the agent serves its request inspector.
struct InspectorOption: Sendable, Equatable {
    var host: String
    var port: Int

    static let defaultValue = "127.0.0.1:4040"

    /// nil for `off`. Takes `PORT`, `HOST:PORT` or `[IPv6]:PORT`.
    static func parse(_ text: String) throws -> InspectorOption? {
        if text.lowercased() == "off" { return nil }
        let problem = ValidationError("--inspect takes HOST:PORT (such as 127.0.0.1:4040), a PORT, or off")
        if let port = Int(text) {
            guard (1...65535).contains(port) else { throw problem }
            return InspectorOption(host: "127.0.0.1", port: port)
        }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else { throw problem }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw problem }
        return InspectorOption(host: host, port: port)
    }

    /// Starts the inspector's server. Never fatal: when no port is free, the agent runs
    /// without it, and `note` says so.
    static func start(
        _ option: InspectorOption?, onDeadline: @escaping @Sendable (DeadlineNotice) -> Void
    ) async -> (inspector: Inspector?, server: InspectorServer?, note: String?) {
        guard let option else { return (nil, nil, nil) }
        let inspector = Inspector(onDeadline: onDeadline)
        do {
            let server = try await InspectorServer.start(inspector: inspector, host: option.host, port: option.port)
            let note = server.portTaken.map { "inspector: port \($0) is taken; using \(server.port) instead" }
            return (inspector, server, note)
        } catch {
            return (nil, nil, "\(error); the agent runs without it (--inspect ADDR picks another address)")
        }
    }
}
