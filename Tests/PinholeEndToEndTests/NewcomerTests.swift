import Foundation
import NIOCore
import NIOPosix
import PinholeTestSupport
import Testing

/// The built `relay` and `agent` as a newcomer meets them: help, version, refusals of
/// bad flags, the header while the relay cannot be reached, and a clean stop.
@Suite("The first ten minutes: what the executables print", .timeLimit(.minutes(3)))
struct NewcomerTests {
    private let binaries = builtExecutablesDirectory
    static let goodToken = "newcomer-token-0123456789"
    static let pin = "sha256:" + String(repeating: "ab", count: 32)

    private func run(
        _ tool: String, _ arguments: [String], environment: [String: String] = [:]
    ) async throws -> (
        status: Int32, output: String
    ) {
        let process = try ChildProcess(
            binaries + "/" + tool, arguments, environment: environment,
            currentDirectory: try makeTemporaryDirectory("newcomer"))
        return await process.waitForExit()
    }

    @Test("--version on both commands")
    func version() async throws {
        for tool in ["relay", "agent"] {
            let (status, output) = try await run(tool, ["--version"])
            #expect(status == 0)
            #expect(output == "0.1.0\n", "\(tool)")
        }
    }

    @Test("help fits 80 columns, with every sentence and example whole, and a short usage line")
    func helpFits() async throws {
        let cases: [(String, [String], [String])] = [
            (
                "relay", ["--help"],
                [
                    "OVERVIEW: Carry public HTTP requests to Pinhole agents over TLS.",
                    "point *.D at this machine",
                    "  relay --domain tunnels.example.com --public-port 80 --token \"$TOKEN\"",
                    "  relay --public-host 203.0.113.7 --tunnel-ports 20000-20099",
                    "for --forget-after (30 days): the agent comes back at the same",
                    "USAGE: relay (--domain D | --tunnel-ports A-B) [--token T] [options]",
                ]
            ),
            (
                "agent", ["--help"],
                [
                    "OVERVIEW: Send a cluster's requests to the app under your debugger.",
                    "  agent istio --service checkout --authority dev.example.com:8080",
                    "USAGE: agent [target] [--relay HOST:PORT --token T --pin sha256:HEX] [options]",
                ]
            ),
            (
                "agent", ["istio", "--help"],
                [
                    "OVERVIEW: Print the Istio resources for a tunnel, without starting one.",
                    "  agent istio --service checkout --namespace shop \\",
                    "    --authority dev.tunnel.example.com:8080 | kubectl apply -f -",
                    "  kubectl delete serviceentry,destinationrule -n shop \\",
                ]
            ),
        ]
        for (tool, arguments, lines) in cases {
            let (status, output) = try await run(tool, arguments, environment: ["COLUMNS": "80"])
            #expect(status == 0)
            for line in output.split(separator: "\n") {
                #expect(line.count <= 80, "\(tool) \(arguments): \(line.count) columns: \(line)")
            }
            let all = output.split(separator: "\n").map(String.init)
            for wanted in lines {
                #expect(all.contains { $0.hasSuffix(wanted) }, "\(tool) \(arguments) lacks the line '\(wanted)'")
            }
        }
    }

    @Test("flags are refused in one style: a sentence that names the flag, the short usage, status 64")
    func refusals() async throws {
        let token = Self.goodToken
        let advice = "use at least 16, such as the output of `openssl rand -hex 24`"
        let cases: [(String, [String], [String: String], String)] = [
            (
                "relay",
                ["--domain", "t.example.com", "--public-port", "21220", "--agent-port", "21220", "--token", token],
                [:], "--public-port and --agent-port are both 21220; give them different ports"
            ),
            (
                "relay", ["--public-port", "8080", "--agent-port", "8100", "--token", token], [:],
                "the default --tunnel-ports, 8081-8180 (the 100 ports after --public-port), includes --agent-port 8100;"
                    + " give --tunnel-ports A-B without it, or another --agent-port"
            ),
            (
                "relay", ["--tunnel-ports", "20000-20099", "--public-port", "20050", "--token", token], [:],
                "--tunnel-ports 20000-20099 includes --public-port 20050; give a range without it"
            ),
            (
                "relay", ["--domain", "t.example.com", "--token", "abc"], [:],
                "--token: a token of 3 characters is too easy to guess; \(advice)"
            ),
            (
                "relay", ["--domain", "t.example.com"], ["PINHOLE_TOKENS": "\(token),short"],
                "PINHOLE_TOKENS: a token of 5 characters is too easy to guess; \(advice)"
            ),
            (
                "relay", ["--domain", "bad_domain", "--token", token], [:],
                "--domain bad_domain: \(Self.domainProblem)"
            ),
            (
                "agent", ["3000", "--relay", "127.0.0.1:4443", "--token", "abc", "--pin", Self.pin], [:],
                "--token: a token of 3 characters is too easy to guess; \(advice)"
            ),
            (
                "agent", ["3000", "--relay", "127.0.0.1:4443", "--pin", Self.pin], ["PINHOLE_TOKEN": "secret123"],
                "PINHOLE_TOKEN: a token of 9 characters is too easy to guess; \(advice)"
            ),
            (
                "agent", ["http://localhost:3000/api"], [:],
                "'http://localhost:3000/api' is not a target address: a target is only scheme, host and port; "
                    + "the path '/api' would be ignored, since each request keeps its own path "
                    + "(give http://localhost:3000)"
            ),
        ]
        for (tool, arguments, environment, message) in cases {
            let (status, output) = try await run(tool, arguments, environment: environment)
            #expect(status == 64, "\(tool) \(arguments): \(output)")
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.first == "Error: \(message)", "\(tool) \(arguments)")
            #expect(lines.dropFirst().first.map { $0.hasPrefix("Usage: ") && $0.count <= 80 } == true, "\(output)")
            #expect(!output.contains("secret123"))
            MessageHygiene.check(message, secret: token)
        }
    }

    @Test("a port in use names the flag to change, in a sentence")
    func portInUse() async throws {
        let holder = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { holder.close(promise: nil) }
        let port = try #require(holder.localAddress?.port)
        let relayFlags = ["--bind", "127.0.0.1", "--domain", "t.example.com", "--token", Self.goodToken]
        let cases: [(String, [String], String)] = [
            (
                "relay", relayFlags + ["--public-port", "\(port)", "--agent-port", "0"],
                "relay: cannot listen for public HTTP on 127.0.0.1:\(port): address already in use; "
                    + "choose another --public-port"
            ),
            (
                "relay", relayFlags + ["--public-port", "0", "--agent-port", "\(port)"],
                "relay: cannot listen for agents on 127.0.0.1:\(port): address already in use; "
                    + "choose another --agent-port"
            ),
            (
                "agent", ["3000", "--bind", "127.0.0.1", "--public-port", "\(port)"],
                "agent: cannot listen for public HTTP on 127.0.0.1:\(port): address already in use; "
                    + "choose another --public-port"
            ),
        ]
        for (tool, arguments, message) in cases {
            let (status, output) = try await run(tool, arguments)
            #expect(status == 1, "\(tool) \(arguments): \(output)")
            #expect(output.hasSuffix(message + "\n"), "\(output)")
            MessageHygiene.check(message, secret: Self.goodToken)
        }
    }

    /// What DNS1123 says about `bad_domain`.
    static let domainProblem =
        "its label 'bad_domain' is not valid: it contains '_', and only lowercase letters a-z, digits 0-9 and '-' "
        + "are allowed"

    @Test("a domain is normalised: lower case, no leading or trailing dot")
    func domainNormalised() async throws {
        let relay = try ChildProcess(
            binaries + "/relay",
            [
                "--bind", "127.0.0.1", "--public-port", "0", "--agent-port", "0", "--domain", ".Tunnels.Example.COM.",
                "--token", Self.goodToken,
            ], currentDirectory: try makeTemporaryDirectory("domain"))
        defer { relay.terminate() }
        let banner = try await relay.waitForOutput { $0.contains("On your laptop") }
        #expect(banner.contains("  public   http://NAME.tunnels.example.com:"), "\(banner)")
        #expect(banner.contains("(point *.tunnels.example.com at this machine)"), "\(banner)")
    }

    @Test("an unreachable relay: the header at once, naming the relay; the README's VS Code task starts on it")
    func unreachableRelay() async throws {
        let port = try await ServerBootstrapProbe.bind()
        let agent = try ChildProcess(
            binaries + "/agent",
            ["3000", "--relay", "127.0.0.1:\(port)", "--token", Self.goodToken, "--pin", Self.pin])
        defer { agent.terminate() }
        let output = try await agent.waitForOutput { $0.contains("(attempt 1)") && $0.hasSuffix("\n") }
        let lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(Array(lines.prefix(3)) == ["", "pinhole agent", "  connecting to relay 127.0.0.1:\(port)…"])
        let retry = try #require(lines.first { $0.contains("(attempt 1)") })
        #expect(
            retry.hasSuffix(
                "(attempt 1): relay 127.0.0.1:\(port) refused the connection; is the relay running, "
                    + "and is port \(port) open in its firewall?"), "\(retry)")
        #expect(!output.contains(Self.goodToken))
        MessageHygiene.check(retry, secret: Self.goodToken)

        let background = try VSCodeTask.readme()
        #expect(background.keys.sorted() == ["activeOnStart", "beginsPattern", "endsPattern"])
        #expect(background["activeOnStart"] as? Bool == true)
        let begins = try NSRegularExpression(pattern: try #require(background["beginsPattern"] as? String))
        let ends = try NSRegularExpression(pattern: try #require(background["endsPattern"] as? String))
        func matches(_ regex: NSRegularExpression, _ line: String) -> Bool {
            regex.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
        }
        let begin = try #require(lines.firstIndex { matches(begins, $0) }, "beginsPattern matches no line")
        let end = try #require(lines.firstIndex { matches(ends, $0) }, "endsPattern matches no line")
        #expect(begin < end && end < lines.firstIndex(of: retry)!)

        // And with the relay embedded, where the header ends with the authority.
        let embedded = try ChildProcess(binaries + "/agent", ["3000", "--bind", "127.0.0.1", "--public-port", "0"])
        defer { embedded.terminate() }
        let header = try await embedded.waitForOutput { $0.contains("  target ") }
            .split(separator: "\n").map(String.init)
        let embeddedEnd = try #require(header.firstIndex { matches(ends, $0) })
        #expect(header[embeddedEnd].hasPrefix("  authority  127.0.0.1:"))
        #expect(header.firstIndex { matches(begins, $0) } ?? Int.max < embeddedEnd)
    }
}

/// The VS Code task in the README, as VS Code reads it.
enum VSCodeTask {
    /// The `problemMatcher.background` object of the README's `pinhole` task.
    static func readme() throws -> [String: Any] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        let blocks = readme.components(separatedBy: "```json\n").dropFirst().map {
            $0.components(separatedBy: "```")[0]
        }
        for block in blocks {
            guard let object = try JSONSerialization.jsonObject(with: Data(block.utf8)) as? [String: Any],
                let tasks = object["tasks"] as? [[String: Any]],
                let task = tasks.first(where: { $0["label"] as? String == "pinhole" })
            else { continue }
            #expect(task["isBackground"] as? Bool == true)
            let matcher = try #require(task["problemMatcher"] as? [String: Any])
            #expect(matcher["pattern"] is [String: Any], "VS Code requires a pattern, even one that never matches")
            return try #require(matcher["background"] as? [String: Any])
        }
        throw TestFailure("the README has no VS Code task labelled pinhole")
    }
}
