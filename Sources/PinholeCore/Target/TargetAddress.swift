import Foundation

/// Where the agent forwards requests: the application under the debugger.
public struct TargetAddress: Sendable, Equatable, CustomStringConvertible {
    /// How the agent talks to the app.
    public enum AppProtocol: String, Sendable, CaseIterable {
        /// HTTP/1.1 over pooled keep-alive connections.
        case http1
        /// HTTP/2 with prior knowledge (cleartext): gRPC apps, and other HTTP/2 servers.
        case h2c
    }

    public var host: String
    public var port: Int
    public var appProtocol: AppProtocol

    public static let `default` = TargetAddress(host: "localhost", port: 3000)

    public init(host: String, port: Int, appProtocol: AppProtocol = .http1) {
        self.host = host
        self.port = port
        self.appProtocol = appProtocol
    }

    /// Accepts `3000`, `host:port`, `[::1]:3000`, or a URL such as `http://localhost:3000`
    /// or `h2c://localhost:50051` (HTTP/2 with prior knowledge).
    public init(parsing text: String) throws(TargetAddressError) {
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var appProtocol = AppProtocol.http1
        if let schemeEnd = rest.range(of: "://") {
            let scheme = rest[..<schemeEnd.lowerBound].lowercased()
            guard scheme == "http" || scheme == "h2c" else {
                throw TargetAddressError(
                    input: text,
                    reason: "only http:// and h2c:// targets are supported (the agent speaks plain HTTP/1.1 or "
                        + "HTTP/2 to your app)")
            }
            if scheme == "h2c" { appProtocol = .h2c }
            rest = rest[schemeEnd.upperBound...]
            if let slash = rest.firstIndex(where: { "/?#".contains($0) }) {
                let path = rest[slash...]
                guard path == "/" else {
                    throw TargetAddressError(
                        input: text,
                        reason: "a target is only scheme, host and port; the path '\(path)' would be ignored, "
                            + "since each request keeps its own path (give http://\(rest[..<slash]))")
                }
                rest = rest[..<slash]
            }
        }
        if let port = Int(rest) {
            self.init(host: "localhost", port: port)
        } else if rest.hasPrefix("["), let close = rest.firstIndex(of: "]") {
            let host = String(rest[rest.index(after: rest.startIndex)..<close])
            let portText = rest[rest.index(after: close)...].dropFirst()
            self.init(host: host, port: portText.isEmpty ? 80 : Int(portText) ?? -1)
        } else if let colon = rest.lastIndex(of: ":"), !rest[..<colon].contains(":") {
            self.init(host: String(rest[..<colon]), port: Int(rest[rest.index(after: colon)...]) ?? -1)
        } else if !rest.isEmpty, !rest.contains(":") {
            self.init(host: String(rest), port: 80)
        } else {
            throw TargetAddressError(input: text, reason: "expected PORT, HOST:PORT or http://HOST:PORT")
        }
        guard !host.isEmpty else { throw TargetAddressError(input: text, reason: "the host is empty") }
        guard (1...65535).contains(port) else {
            throw TargetAddressError(input: text, reason: "the port must be a number from 1 to 65535")
        }
        self.appProtocol = appProtocol
    }

    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "\(appProtocol == .h2c ? "h2c" : "http")://\(shownHost):\(port)"
    }
}

public struct TargetAddressError: Error, Sendable, CustomStringConvertible {
    public let input: String
    public let reason: String

    public var description: String { "'\(input)' is not a target address: \(reason)" }
}
