import Foundation
import PinholeTestSupport
import Testing

/// The built relay and agents as processes, several developers on one service.
private struct SharedRelay {
    let relay: ChildProcess
    let agentPort: String
    let publicPort: Int
    let pin: String
    let directory: String

    static func start(_ options: [String] = []) async throws -> SharedRelay {
        let directory = try makeTemporaryDirectory("shared")
        let relay = try ChildProcess(
            builtExecutablesDirectory + "/relay",
            [
                "--bind", "127.0.0.1", "--public-port", "0", "--agent-port", "0", "--domain", "tunnels.test",
                "--token", "team-token-for-tests",
            ] + options,
            currentDirectory: directory)
        let banner = try await relay.waitForOutput { $0.contains("On your laptop") }
        return SharedRelay(
            relay: relay, agentPort: try #require(capture(#"agents   127\.0\.0\.1:(\d+)"#, in: banner)),
            publicPort: try #require(capture(#"tunnels\.test:(\d+)"#, in: banner).flatMap { Int($0) }),
            pin: try #require(capture(#"pin      (sha256:[0-9a-f]+)"#, in: banner)), directory: directory)
    }

    /// An agent for `name`, on service checkout.shop in route mode, taking `x-user: MATCH`.
    func agent(_ name: String, appPort: Int, match: String) throws -> ChildProcess {
        try ChildProcess(
            builtExecutablesDirectory + "/agent",
            [
                String(appPort), "--relay", "127.0.0.1:\(agentPort)", "--token", "team-token-for-tests", "--pin", pin,
                "--name", name,
                "--service", "checkout", "--namespace", "shop", "--istio", "route", "--match-header", "x-user=\(match)",
                "--istio-out", file(name), "--log-format", "json", "--quiet",
            ])
    }

    func file(_ name: String) -> String { directory + "/\(name).yaml" }

    /// The file without the annotations that say who wrote it and when.
    func resources(_ name: String) throws -> String {
        try String(contentsOfFile: file(name), encoding: .utf8).split(separator: "\n")
            .filter { !$0.contains("pinhole.dev/tunnel:") && !$0.contains("pinhole.dev/created:") }
            .joined(separator: "\n")
    }

    /// The service's own Host at the public port, as `user`, as curl arguments.
    func request(user: String, _ path: String) -> [String] {
        [
            "-sS", "--max-time", "10", "-H", "Host: checkout-shadow:3000", "-H", "x-user: \(user)",
            "http://127.0.0.1:\(publicPort)\(path)",
        ]
    }

    /// Which tunnel answered a request for the service's own Host (as a mirrored copy
    /// carries it), with `x-user: VALUE`: its x-pinhole-tunnel, or the status.
    func answerer(user: String) async throws -> String {
        let (_, output) = try await curl([
            "-sS", "-o", "/dev/null", "-D", "-", "-H", "Host: checkout-shadow:3000", "-H", "x-user: \(user)",
            "http://127.0.0.1:\(publicPort)/hello",
        ])
        let tunnel = output.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-pinhole-tunnel:") }
        return tunnel.map { String($0.split(separator: ":")[1]).trimmingCharacters(in: .whitespaces) }
            ?? String(output.prefix(12))
    }
}

/// A relay, two apps (for alice and bob), and alice's agent, its tunnel ready.
private struct AliceConnected {
    let shared: SharedRelay
    let appA: LocalApp
    let appB: LocalApp
    let alice: ChildProcess

    static func start(_ relayOptions: [String] = []) async throws -> AliceConnected {
        try #require(
            FileManager.default.isExecutableFile(atPath: builtExecutablesDirectory + "/agent"),
            "build the executables first: swift build")
        let (appA, appB) = (try await LocalApp.start(), try await LocalApp.start())
        let shared = try await SharedRelay.start(relayOptions)
        let alice = try shared.agent("alice", appPort: appA.port, match: "alice")
        try await alice.waitForOutput { $0.contains(#""event":"tunnel_ready""#) }
        return AliceConnected(shared: shared, appA: appA, appB: appB, alice: alice)
    }

    func stop() {
        alice.terminate()
        shared.relay.terminate()
        Task { [appA, appB] in
            await appA.stop(); await appB.stop()
        }
    }
}

/// The number of JSON lines of `event` in `output`.
private func count(_ event: String, in output: String) -> Int {
    output.split(separator: "\n").filter { $0.contains(#""event":"\#(event)""#) }.count
}

@Suite("Several developers, one service", .timeLimit(.minutes(2)))
struct SharedServiceTests {
    @Test("two agents converge on one VirtualService, each gets its own requests, a duplicate match is refused")
    func twoDevelopersShareAService() async throws {
        let team = try await AliceConnected.start()
        defer { team.stop() }
        let (shared, alice, appB) = (team.shared, team.alice, team.appB)
        #expect(try shared.resources("alice").contains("name: pinhole-debug"), "alone, the single-developer file")

        let bob = try shared.agent("bob", appPort: appB.port, match: "bob")
        defer { bob.terminate() }
        // Alice rewrites her file when bob joins; bob writes the shared one from the start
        // (or rewrites it, if the relay's announcement came after his tunnel was ready).
        try await alice.waitForOutput { count("istio_changed", in: $0) >= 1 }
        // Bob's file is the shared one once an event of his names alice (it is written before
        // the event is printed); one without her may come first.
        try await bob.waitForOutput {
            ($0.contains(#""istio_developers""#) || $0.contains(#""istio_changed""#)) && $0.contains(#""alice"#)
        }
        let aliceFile = try shared.resources("alice")
        #expect(aliceFile == (try shared.resources("bob")), "both agents render the same resources")
        let ruleNames = aliceFile.split(separator: "\n").filter { $0.hasPrefix("  - name: ") }
        #expect(ruleNames == ["  - name: pinhole-alice", "  - name: pinhole-bob", "  - name: default"], "\(aliceFile)")
        #expect(aliceFile.contains("name: checkout-pinhole-alice") && aliceFile.contains("name: checkout-pinhole-bob"))
        #expect(alice.output.contains(#""developers":["alice","bob"]"#), "\(alice.output)")

        // The service's Host goes to the developer whose match the request carries.
        #expect(try await shared.answerer(user: "alice") == "alice")
        #expect(try await shared.answerer(user: "bob") == "bob")
        #expect(try await shared.answerer(user: "carol") == "HTTP/1.1 404")

        // A third developer asking for alice's match is refused, naming her tunnel.
        let carol = try shared.agent("carol", appPort: appB.port, match: "alice")
        let (status, refusal) = await carol.waitForExit()
        #expect(status != 0)
        #expect(refusal.contains("x-user=alice") && refusal.contains("'alice'"), "\(refusal)")

        // Bob stops: alice's file goes back to hers alone, and his requests find no one.
        bob.terminate()
        try await alice.waitForOutput { count("istio_changed", in: $0) >= 2 }
        #expect(
            alice.output.split(separator: "\n").last { $0.contains("istio_changed") }?
                .contains(#""developers":["alice"]"#) == true, "\(alice.output)")
        let alone = try shared.resources("alice")
        #expect(alone.contains("name: pinhole-debug") && !alone.contains("bob"), "\(alone)")
        #expect(try await shared.answerer(user: "alice") == "alice")
    }

    @Test("requests through the shared alias count against the developer's own tunnel cap")
    func sharedAliasKeepsTheTunnelCap() async throws {
        let team = try await AliceConnected.start(["--max-in-flight-per-tunnel", "1", "--in-flight-wait", "1"])
        defer { team.stop() }
        let (shared, alice, appA, appB) = (team.shared, team.alice, team.appA, team.appB)
        let bob = try shared.agent("bob", appPort: appB.port, match: "bob")
        defer { bob.terminate() }
        // Alice hears of bob once both are connected: the alias then picks a developer
        // per request.
        try await alice.waitForOutput { count("istio_changed", in: $0) >= 1 }

        // Alice's one place is taken by a stream her app holds open.
        let held = try ChildProcess("curl", ["-N"] + shared.request(user: "alice", "/events"))
        defer { held.terminate() }
        _ = try await held.waitForOutput { $0.contains("data: first") }

        // Her next request waits its second in line and is refused, naming the cap; with
        // only the per-address cap (256) it went through.
        let (_, refused) = try await curl(shared.request(user: "alice", "/hello") + ["-w", "\n%{http_code}"])
        #expect(refused.hasSuffix("503") && refused.contains("--max-in-flight-per-tunnel"), "\(refused)")
        // The same over HTTP/2, whose streams take their places apart (`FairShareUpstream`).
        let (_, refusedStream) = try await curl(
            ["--http2-prior-knowledge"] + shared.request(user: "alice", "/hello") + ["-w", "\n%{http_code}"])
        #expect(
            refusedStream.hasSuffix("503") && refusedStream.contains("--max-in-flight-per-tunnel"), "\(refusedStream)")
        // Bob's tunnel has its own place.
        let (_, answered) = try await curl(shared.request(user: "bob", "/hello"))
        #expect(answered == "Hello, world!", "\(answered)")

        appA.releaseEvents()
        let (_, stream) = await held.waitForExit()
        #expect(stream.contains("data: second"), "\(stream)")
    }
}
