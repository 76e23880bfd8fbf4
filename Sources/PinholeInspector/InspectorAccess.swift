import NIOHTTP1
import PinholeCore

/// Who may use the inspector. The page shows what the debugger got, and replay sends
/// requests to the app, so a web page elsewhere must not reach it:
/// - DNS rebinding: a name that resolves to 127.0.0.1 gets the browser to send the
///   page's Host. Only Hosts that name this server directly pass: an IP literal,
///   `localhost`, or the host it was started on.
/// - CSRF: a page elsewhere can send writes without reading the answer. A write with an
///   `Origin` must come from the inspector's own origin; one without (curl, scripts) passes.
struct InspectorAccess: Sendable {
    let boundHost: String

    enum Verdict: Equatable {
        case allowed
        case refused(String)
    }

    func check(method: HTTPMethod, headers: HTTPHeaders) -> Verdict {
        let hosts = headers["host"]
        guard hosts.count == 1, let host = hosts.first, isOwnName(host) else {
            return .refused(
                "the inspector answers only to its own address (Host \(hosts.first ?? "missing") is not one); "
                    + "open it as http://127.0.0.1:PORT or http://localhost:PORT")
        }
        let isWrite = ![.GET, .HEAD, .OPTIONS].contains(method)
        if isWrite, let origin = headers.first(name: "origin"), origin != "http://\(host)" {
            return .refused("the inspector takes changes only from its own page, not from \(origin)")
        }
        return .allowed
    }

    /// Whether `host` (a Host field: name, then an optional port) names this server.
    func isOwnName(_ host: String) -> Bool {
        var name = Substring(host.lowercased())
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            name = name[name.index(after: name.startIndex)..<close]
            return IPAddressLiteral.isValid(String(name))
        }
        if let colon = name.lastIndex(of: ":") { name = name[..<colon] }
        return name == "localhost" || name == boundHost.lowercased() || IPAddressLiteral.isValid(String(name))
    }
}
