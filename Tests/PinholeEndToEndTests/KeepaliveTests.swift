import Foundation
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// A peer that hangs with its TCP connection open (frozen with SIGSTOP: the kernel still
/// acknowledges bytes, nobody answers PINGs) must be noticed, by keepalive once the tunnel
/// is up and by the handshake timeout before.
@Suite("Peers that stop answering are dropped", .timeLimit(.minutes(1)))
struct KeepaliveTests {
    @Test("the relay drops a frozen agent, and its host then gets a 503 at once")
    func relayDropsFrozenAgent() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(
            appPort: app.port, relayArguments: ["--keepalive", "1"], agentArguments: ["--keepalive", "60"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let agent = tunnel.agent.processIdentifier
        kill(agent, SIGSTOP)
        defer { kill(agent, SIGCONT) }  // runs before stop(): a stopped process keeps SIGTERM pending

        _ = try await tunnel.relay.waitForOutput { $0.contains("agent disconnected") }
        let (status, output) = try await curl(tunnel.curl("/hello", ["-w", "\n%{http_code}"]))
        #expect(status == 0)
        #expect(output.hasSuffix("\n503"), "\(output)")
        #expect(output.contains("bulk.tunnels.test"), "the 503 names the host: \(output)")
    }

    @Test("the agent notices a frozen relay and reports why it disconnected")
    func agentNoticesFrozenRelay() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(
            appPort: app.port, relayArguments: ["--keepalive", "60"], agentArguments: ["--keepalive", "1"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let relay = tunnel.relay.processIdentifier
        kill(relay, SIGSTOP)
        defer { kill(relay, SIGCONT) }

        let output = try await tunnel.agent.waitForOutput { $0.contains(#""event":"disconnected""#) }
        #expect(output.contains("the relay stopped answering"), "\(output)")
    }

    @Test("a relay that accepts and never answers is retried after the handshake timeout")
    func silentRelayIsRetried() async throws {
        let silent = try await SilentListener.start()
        defer { silent.close() }
        let relay = try await TestRelay.start()  // for an identity to pin; never dialled
        defer { Task { await relay.stop() } }
        let agent = TestAgent.start(
            relay: relay, target: .default, agentPort: silent.port, handshakeTimeout: .milliseconds(300))
        defer { Task { await agent.stop() } }
        let events = try await agent.events { events in
            events.contains { event in
                guard case .reconnecting(_, _, let reason) = event else { return false }
                return reason.contains("did not complete the handshake")
            }
        }
        #expect(!events.contains { if case .tunnelReady = $0 { true } else { false } }, "\(events)")
    }

    @Test("stopping an agent that waits for a silent relay's handshake does not wait for the timeout")
    func stopDuringHandshake() async throws {
        let silent = try await SilentListener.start()
        defer { silent.close() }
        let relay = try await TestRelay.start()
        defer { Task { await relay.stop() } }
        // Longer than the suite's time limit: only cancellation can end this wait in time.
        let agent = TestAgent.start(
            relay: relay, target: .default, agentPort: silent.port, handshakeTimeout: .seconds(120))
        try await silent.accepted.futureResult.get()
        await agent.stop()
        #expect(!agent.recorded.contains { if case .tunnelReady = $0 { true } else { false } })
    }
}

/// Public clients can vanish without a FIN too; TCP keepalive probes them.
@Suite("Public connections: TCP keepalive and idle timeout", .timeLimit(.minutes(1)))
struct PublicKeepaliveTests {
    @Test("an idle public connection carries a keepalive timer of about a minute")
    func publicConnectionsHaveKeepalive() async throws {
        // The embedded relay: same public server, and a 200 keeps the connection open
        // (an error answer would end it).
        let app = try await LocalApp.start()
        let agent = TestAgent.start(relay: nil, target: TargetAddress(host: "127.0.0.1", port: app.port))
        defer {
            Task {
                await agent.stop(); await app.stop()
            }
        }
        let port = try await agent.tunnel().port
        // An answer shows the relay has accepted the connection and set its options.
        let (client, _) = try await Self.request(port: port, host: "app.test")
        defer { client.close(promise: nil) }
        // The relay's end of the connection: its local port is the public port.
        let ss = try ChildProcess("ss", ["-tnoH", "state", "established", "( sport = :\(port) )"])
        let (status, output) = await ss.waitForExit()
        #expect(status == 0)
        // ss prints the time left, such as "timer:(keepalive,59sec,0)"; the kernel's own
        // default would read "120min".
        let timer = output.firstMatch(of: /timer:\(keepalive,(\d+)(sec|min)/)
        #expect(timer != nil, "ss shows no keepalive timer: \(output)")
        if let timer {
            let seconds = (Int(timer.1) ?? 0) * (timer.2 == "min" ? 60 : 1)
            #expect(seconds > 0 && seconds <= 60, "\(output)")
        }
    }
}

extension PublicKeepaliveTests {
    /// Sends one GET on a new connection to `port`; returns the connection, left open,
    /// and the first bytes of the answer.
    static func request(port: Int, host: String) async throws -> (any Channel, String) {
        let answered = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String.self)
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FirstRead(answered))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        do {
            try await client.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")).get()
            return (client, try await answered.futureResult.get())
        } catch {
            client.close(promise: nil)
            throw error
        }
    }

    @Test("the relay closes a public connection that stays idle for --idle-timeout, after answering on it")
    func idleConnectionIsClosed() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(appPort: app.port, relayArguments: ["--idle-timeout", "1"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        let port = try #require(tunnel.host.split(separator: ":").last.flatMap { Int($0) })
        let (client, answer) = try await Self.request(port: port, host: tunnel.host)
        defer { client.close(promise: nil) }
        #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n"), "an answer that keeps the connection open: \(answer)")
        // The relay ends the connection by itself; well before the 30 s a connection
        // gets before its first request, which would also end it.
        let clock = ContinuousClock()
        let answeredAt = clock.now
        try await client.closeFuture.get()
        #expect(clock.now - answeredAt < .seconds(15))
    }
}

extension PublicKeepaliveTests {
    @Test("a request the app takes longer than the idle timeout to answer keeps its connection")
    func slowAnswerIsNotIdle() async throws {
        let app = try await LocalApp.start()
        let tunnel = try await TunnelProcesses.start(appPort: app.port, relayArguments: ["--idle-timeout", "1"])
        defer {
            tunnel.stop()
            Task { await app.stop() }
        }
        // As if the app sat at a breakpoint for 2.5 s: the connection is busy, not idle.
        let (status, output) = try await curl(tunnel.curl("/slow?ms=2500"))
        #expect(status == 0)
        #expect(output == "slept 2500 ms")
    }
}

/// Completes `promise` with the first bytes that arrive.
private final class FirstRead: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let promise: EventLoopPromise<String>

    init(_ promise: EventLoopPromise<String>) {
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        promise.succeed(String(buffer: unwrapInboundIn(data)))
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

/// A TCP listener that accepts connections and never reads or writes a byte.
private struct SilentListener {
    let channel: any Channel
    /// Completed when the first connection is accepted.
    let accepted: EventLoopPromise<Void>
    var port: Int { channel.localAddress!.port! }

    static func start() async throws -> SilentListener {
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = group.next().makePromise(of: Void.self)
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { child in
                accepted.succeed(())
                return child.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentListener(channel: channel, accepted: accepted)
    }

    /// Closes the listener. `accepted` is failed first (a no-op once it succeeded): a
    /// test can end before the agent's connection was accepted (its TCP handshake done by
    /// the kernel, the accept still queued on a busy loop), and a promise let go of with no
    /// result stops a debug build ("leaking promise").
    func close() {
        accepted.fail(ChannelError.ioOnClosedChannel)
        channel.close(promise: nil)
    }
}
