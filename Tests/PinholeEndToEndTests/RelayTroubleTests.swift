import Foundation
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeTLS
import PinholeTestSupport
import Testing

/// Each way of failing to reach a relay, as the agent words it: the relay's address,
/// what happened, what to check. And, over all of them, nothing internal: no token, no
/// Swift type or function name, no parenthesis left open or closed twice.
@Suite("Connection trouble names the relay and the likely cause", .timeLimit(.minutes(2)))
struct RelayTroubleTests {
    /// Long enough for the relay's rules, and easy to grep for.
    static let secret = "leak-check-token-0123456789"

    /// The first reconnect reason of an agent started with `start`.
    private func firstRetryReason(_ agent: TestAgent) async throws -> String {
        defer { Task { await agent.stop() } }
        let events = try await agent.events { events in
            events.contains { if case .reconnecting = $0 { true } else { false } }
        }
        for event in events {
            if case .reconnecting(_, _, let reason) = event { return reason }
        }
        throw TestFailure("the agent stopped without retrying: \(events)")
    }

    private func stopReason(_ agent: TestAgent) async -> String {
        defer { Task { await agent.stop() } }
        return (await agent.outcome()).map { "\($0)" } ?? "(no error)"
    }

    @Test("refused, silent after TCP, not TLS, unknown host, bad token, wrong pin: each worded, none leaks")
    func everyPathWordedWithoutLeaks() async throws {
        let relay = try await TestRelay.start()
        defer { Task { await relay.stop() } }
        let target = TargetAddress(host: "127.0.0.1", port: 9)
        var messages: [String] = []

        // Nothing listens (and nothing else can, while `refusing` is bound).
        let refusing = try RefusingPort()
        let closed = refusing.port
        let refused = try await firstRetryReason(
            TestAgent.start(relay: relay, target: target, token: Self.secret, agentPort: closed))
        #expect(
            refused
                == "relay 127.0.0.1:\(closed) refused the connection; is the relay running, "
                + "and is port \(closed) open in its firewall?")
        withExtendedLifetime(refusing) {}
        messages.append(refused)

        // The relay's public port: it accepts TCP and waits for an HTTP request.
        let publicPort = relay.addresses.publicPort
        let silent = try await firstRetryReason(
            TestAgent.start(
                relay: relay, target: target, token: Self.secret, agentPort: publicPort,
                handshakeTimeout: .milliseconds(300)))
        #expect(
            silent
                == "relay 127.0.0.1:\(publicPort) accepted the connection but did not complete the handshake "
                + "within 0.3 s; is \(publicPort) the relay's agent port (default 4443, the one its banner shows), "
                + "not its public port?")
        messages.append(silent)

        // A plain HTTP server: it answers the TLS ClientHello with an HTTP error.
        let plain = try ChildProcess("python3", ["-u", "-c", Self.plainHTTPServer])
        defer { plain.terminate() }
        let plainPort = try #require(
            Int(try await plain.waitForOutput { $0.hasSuffix("\n") }.trimmingCharacters(in: .whitespacesAndNewlines)))
        let notTLS = try await firstRetryReason(
            TestAgent.start(relay: relay, target: target, token: Self.secret, agentPort: plainPort))
        #expect(notTLS.hasPrefix("relay 127.0.0.1:\(plainPort) did not answer with TLS ("), "\(notTLS)")
        #expect(
            notTLS.hasSuffix(
                "); is \(plainPort) the relay's agent port (default 4443, the one its banner shows), "
                    + "not a plain HTTP port?"), "\(notTLS)")
        messages.append(notTLS)

        let unknown = try await firstRetryReason(
            TestAgent.start(relay: relay, target: target, token: Self.secret, relayHost: "no-such-relay.invalid"))
        #expect(
            unknown
                == "cannot resolve the relay host 'no-such-relay.invalid'; check the name in --relay, "
                + "and this machine's DNS")
        messages.append(unknown)

        let badToken = await stopReason(TestAgent.start(relay: relay, target: target, token: Self.secret))
        #expect(badToken == "the relay refused the tunnel: the relay does not accept this token")
        messages.append(badToken)

        let otherIdentity = try CertificateGenerator.selfSigned(
            CertificateRequest(commonName: "other", ipAddresses: ["127.0.0.1"]))
        let wrongPin = await stopReason(
            TestAgent.start(
                relay: relay, target: target, token: Self.secret, trust: .pinned(otherIdentity.fingerprint)))
        #expect(wrongPin.hasPrefix("cannot trust the relay: the server's certificate is sha256:"), "\(wrongPin)")
        messages.append(wrongPin)

        for message in messages { MessageHygiene.check(message, secret: Self.secret) }
    }

    /// Prints its port, then answers whatever arrives with an HTTP 400 and closes, as a
    /// web server does when TLS arrives on its plain port.
    static let plainHTTPServer = """
        import socket
        listener = socket.create_server(("127.0.0.1", 0))
        print(listener.getsockname()[1], flush=True)
        while True:
            connection, _ = listener.accept()
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 400 Bad Request\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n")
            connection.close()
        """
}

/// Checks that a message meant for a person carries nothing internal.
enum MessageHygiene {
    /// A Swift type name (`RelayEndpoint`, `UnknownHost`), a qualified name
    /// (`PinholeTLS.TLSTrust`) or a function signature (`bind(descriptor:`).
    private static let internalNames = try! NSRegularExpression(
        pattern: #"\b[A-Z][a-z]+[A-Z][a-z]\w*|\b[A-Za-z]+\.[A-Z]\w+|\w\((\w+:)+"#)

    static func check(_ message: String, secret: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(!message.contains(secret), "the token leaked: \(message)", sourceLocation: sourceLocation)
        let range = NSRange(message.startIndex..., in: message)
        if let match = internalNames.firstMatch(in: message, range: range), let found = Range(match.range, in: message)
        {
            Issue.record("'\(message[found])' looks like a Swift name in: \(message)", sourceLocation: sourceLocation)
        }
        var depth = 0
        for character in message {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if depth < 0 { break }
        }
        #expect(depth == 0, "unbalanced parentheses in: \(message)", sourceLocation: sourceLocation)
    }
}
