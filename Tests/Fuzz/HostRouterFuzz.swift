import NIOCore
import PinholeCore

/// libFuzzer's entry for the host router: the registry and `RelayRouter`, which turn a
/// request's Host (or `:authority`) and the port it arrived on into a tunnel. The input
/// is lines. `+NAME ALIAS…` registers tunnel NAME (under one of two tokens, by the
/// line's number) with those aliases, as a hello would; any other line, `HOST PORT` or
/// `HOST`, is a request to route. No agent is attached, so a route found must end in
/// "agent not connected" and anything else in "no tunnel"; every registered name must
/// be found by `NAME.DOMAIN`, in any case and with any port, and every dedicated port by
/// its number.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHostRouter(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let registry = TunnelRegistry(
        domain: "tunnels.test", tunnelPorts: 20_000...20_003, maxTunnels: 8, reservation: .minutes(1))
    let router = RelayRouter(registry: registry)
    let owners = [TokenDigest(token: "fuzz-token-one-0123456789"), TokenDigest(token: "fuzz-token-two-0123456789")]
    var registered: [(name: String, port: Int?)] = []
    for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        if line.hasPrefix("+") {
            let words = line.dropFirst().split(separator: " ").map(String.init)
            // As the relay's handshake does: a name that is no DNS label never registers.
            guard let name = words.first, DNS1123.labelViolation(name) == nil else { continue }
            let aliases = words.dropFirst().compactMap { try? ServiceAlias(description: $0) }
            let registration = registry.register(name: name, aliases: aliases, owner: owners[number % 2])
            if case .accepted(let entry, _) = registration { registered.append((name, entry.port)) }
            continue
        }
        let words = line.split(separator: " ", maxSplits: 1).map(String.init)
        route(router, host: words.first ?? "", port: words.count > 1 ? Int(words[1]) ?? 0 : 0)
    }
    for (name, port) in registered {
        let host = "\(name).tunnels.test"
        expectNotConnected(router, host: host.uppercased() + ":8080", port: 0, named: host)
        if let port { expectNotConnected(router, host: "192.0.2.1", port: port, named: "192.0.2.1:\(port)") }
    }
    return 0
}

private func route(_ router: RelayRouter, host: String, port: Int) {
    do {
        _ = try router.target(forHost: host, localPort: port)
        fatalError("'\(host)' on port \(port) found a tunnel, and none has an agent attached")
    } catch {
        switch error {
        case .noRoute, .agentNotConnected: break
        default: fatalError("'\(host)' on port \(port): unexpected \(error)")
        }
    }
}

private func expectNotConnected(_ router: RelayRouter, host: String, port: Int, named expected: String) {
    do {
        _ = try router.target(forHost: host, localPort: port)
        fatalError("'\(host)' found a tunnel, and none has an agent attached")
    } catch {
        guard error == .agentNotConnected(host: expected) else {
            fatalError("'\(host)' on port \(port) should name \(expected) as not connected: \(error)")
        }
    }
}
