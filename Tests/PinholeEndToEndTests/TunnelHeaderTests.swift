import Foundation
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// The response fields curl saw (`-D -`), lowercased names.
private func responseFields(_ output: String) -> [String: String] {
    var fields: [String: String] = [:]
    for line in output.split(separator: "\r\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        fields[line[..<colon].lowercased()] = value
    }
    return fields
}

@Suite("x-pinhole-tunnel on responses that crossed the tunnel", .timeLimit(.minutes(2)))
struct TunnelHeaderTests {
    @Test("relay and agent, and the embedded relay, name the tunnel; --no-tunnel-header leaves it out")
    func responsesNameTheTunnel() async throws {
        let app = try await LocalApp.start()
        let target = TargetAddress(host: "127.0.0.1", port: app.port)
        let relay = try await TestRelay.start()
        let marked = TestAgent.start(relay: relay, target: target, name: "alice-3f9a2c")
        let unmarked = TestAgent.start(relay: relay, target: target, name: "bob-77aa01", marksResponses: false)
        let embedded = TestAgent.start(relay: nil, target: target)
        defer {
            Task {
                await marked.stop(); await unmarked.stop(); await embedded.stop(); await relay.stop(); await app.stop()
            }
        }
        _ = try await marked.tunnel()
        _ = try await unmarked.tunnel()
        let embeddedPort = try await embedded.tunnel().port

        let (_, viaRelay) = try await curl(relay.curl("alice-3f9a2c", "/hello", ["-D", "-", "-o", "/dev/null"]))
        #expect(responseFields(viaRelay)["x-pinhole-tunnel"] == "alice-3f9a2c", "\(viaRelay)")

        let (_, unmarkedOutput) = try await curl(relay.curl("bob-77aa01", "/hello", ["-D", "-", "-o", "/dev/null"]))
        #expect(unmarkedOutput.hasPrefix("HTTP/1.1 200"), "\(unmarkedOutput)")
        #expect(responseFields(unmarkedOutput)["x-pinhole-tunnel"] == nil, "\(unmarkedOutput)")

        let (_, direct) = try await curl([
            "-sS", "-D", "-", "-o", "/dev/null", "http://127.0.0.1:\(embeddedPort)/hello",
        ])
        let expected = AgentConfiguration.defaultName(target: target)
        #expect(responseFields(direct)["x-pinhole-tunnel"] == expected, "\(direct)")
    }
}
