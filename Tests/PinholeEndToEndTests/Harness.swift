import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeRelay
import PinholeTLS
import PinholeTestSupport

let quietLogger = Logger(label: "pinhole.test", factory: { _ in SwiftLogNoOpLogHandler() })

/// The path of `name` in Tests/scripts.
func testScript(_ name: String) -> String {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts").appendingPathComponent(name).path
}

/// Starts Tests/scripts/raw_app.py (an app that is not SwiftNIO; see its list of
/// paths) and returns it with the port it listens on.
func startRawApp() async throws -> (ChildProcess, Int) {
    let app = try ChildProcess("python3", ["-u", testScript("raw_app.py")])
    let line = try await app.waitForOutput { $0.hasSuffix("\n") }
    guard let port = Int(line.trimmingCharacters(in: .whitespacesAndNewlines)) else {
        throw TestFailure("raw_app.py did not print its port: \(line)")
    }
    return (app, port)
}

/// A relay, an agent tunnelling to a fresh local app as `name`, and the app; stop all
/// three when done.
func startTunnel(
    name: String = "demo", keepalive: TimeAmount = .seconds(15)
) async throws -> (TestRelay, TestAgent, LocalApp) {
    let app = try await LocalApp.start()
    let relay = try await TestRelay.start(keepalive: keepalive)
    let agent = TestAgent.start(
        relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port), name: name, keepalive: keepalive)
    _ = try await agent.tunnel()
    return (relay, agent, app)
}

/// Runs `body` with a relay (set up by `configure`), an agent tunnelling to a fresh local
/// app as `demo`, and the app; stops all three afterwards, whether `body` threw or not.
func withTunnel(
    configure: (inout RelayConfiguration) -> Void = { _ in }, _ body: (TestRelay, LocalApp) async throws -> Void
) async throws {
    let app = try await LocalApp.start()
    let relay = try await TestRelay.start(configure: configure)
    let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: app.port))
    let result: Result<Void, any Error>
    do {
        _ = try await agent.tunnel()
        try await body(relay, app)
        result = .success(())
    } catch {
        result = .failure(error)
    }
    await agent.stop()
    await relay.stop()
    await app.stop()
    try result.get()
}

/// A relay in this process, on loopback, routing tunnels as NAME.tunnels.test.
final class TestRelay: Sendable {
    static let token = "test-token-0123456789"
    static let domain = "tunnels.test"

    let relay: Relay
    let addresses: Relay.Addresses
    let identity: TLSIdentity

    static func start(
        identity: TLSIdentity? = nil, publicPort: Int = 0, agentPort: Int = 0,
        keepalive: TimeAmount = .seconds(15), tunnelPorts: ClosedRange<Int>? = nil,
        configure: (inout RelayConfiguration) -> Void = { _ in }
    ) async throws -> TestRelay {
        let identity =
            try identity
            ?? CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", ipAddresses: ["127.0.0.1"]))
        var configuration = try RelayConfiguration(
            bindHost: "127.0.0.1", publicPort: publicPort, agentPort: agentPort,
            domain: tunnelPorts == nil ? domain : nil, publicHost: "127.0.0.1", tunnelPorts: tunnelPorts,
            tokens: [token, "other-token-0123456789"], identity: identity)
        configuration.keepaliveInterval = keepalive
        configure(&configuration)
        let relay = Relay(
            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger)
        let addresses = try await relay.start()
        return TestRelay(relay: relay, addresses: addresses, identity: identity)
    }

    private init(relay: Relay, addresses: Relay.Addresses, identity: TLSIdentity) {
        self.relay = relay
        self.addresses = addresses
        self.identity = identity
    }

    func stop() async {
        await relay.shutdown()
    }

    /// curl arguments that reach `name`'s tunnel through the public port.
    func curl(_ name: String, _ path: String, _ extra: [String] = []) -> [String] {
        let host = "\(name).\(Self.domain)"
        return ["-sS", "--resolve", "\(host):\(addresses.publicPort):127.0.0.1"] + extra
            + ["http://\(host):\(addresses.publicPort)\(path)"]
    }
}

/// An agent in this process, with its events collected so tests can wait for them.
final class TestAgent: Sendable {
    private let task: Task<Void, any Error>

    static func start(
        relay: TestRelay?, target: TargetAddress, name: String = "demo", token: String = TestRelay.token,
        trust: TLSTrust? = nil, aliases: [String] = [], keepalive: TimeAmount = .seconds(15),
        requestTimeout: TimeAmount? = nil, maxConcurrentStreams: Int? = nil, agentPort: Int? = nil,
        handshakeTimeout: TimeAmount? = nil, relayHost: String = "127.0.0.1", connectTimeout: TimeAmount? = nil,
        marksResponses: Bool = true, waitingThreshold: TimeAmount? = nil,
        configure: (inout AgentConfiguration) -> Void = { _ in }
    ) -> TestAgent {
        let log = EventLog<AgentEvent?>()
        var configuration: AgentConfiguration
        if let relay {
            configuration = AgentConfiguration(
                target: target,
                mode: .relay(
                    .init(
                        host: relayHost, port: agentPort ?? relay.addresses.agentPort, token: token,
                        trust: trust ?? .pinned(relay.identity.fingerprint), name: name, aliases: aliases)))
        } else {
            configuration = AgentConfiguration(
                target: target, mode: .embedded(bindHost: "127.0.0.1", publicPort: 0, publicHost: nil))
        }
        configuration.keepaliveInterval = keepalive
        configuration.requestTimeout = requestTimeout
        configuration.reconnectCap = .milliseconds(500)
        if let maxConcurrentStreams { configuration.http2.maxConcurrentStreams = maxConcurrentStreams }
        if let handshakeTimeout { configuration.handshakeTimeout = handshakeTimeout }
        if let connectTimeout { configuration.connectTimeout = connectTimeout }
        if let waitingThreshold { configuration.waitingThreshold = waitingThreshold }
        configuration.marksResponses = marksResponses
        configure(&configuration)
        let agent = Agent(
            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: quietLogger,
            events: { log.append($0) })
        // nil marks the end of the agent, so waiters do not wait for events that cannot come.
        let task = Task {
            defer { log.append(nil) }
            try await agent.run()
        }
        return TestAgent(task: task, events: log)
    }

    private init(task: Task<Void, any Error>, events: EventLog<AgentEvent?>) {
        self.task = task
        self.eventsStorage = events
    }

    private let eventsStorage: EventLog<AgentEvent?>

    /// Waits for the `count`-th tunnelReady event.
    func tunnel(number count: Int = 1) async throws -> TunnelInfo {
        let events = try await eventsStorage.wait { events in
            events.contains { $0 == nil } || Self.tunnels(in: events).count >= count
        }
        let ready = Self.tunnels(in: events)
        guard ready.count >= count else {
            // The agent has stopped (nil is its last event): its error says why.
            let reason = await outcome().map { "\($0)" } ?? "no error"
            throw TestFailure("the agent stopped before its tunnel was ready (\(reason)): \(events)")
        }
        return ready[count - 1]
    }

    private static func tunnels(in events: [AgentEvent?]) -> [TunnelInfo] {
        events.compactMap { event -> TunnelInfo? in
            if case .tunnelReady(let info) = event { return info }
            return nil
        }
    }

    var recorded: [AgentEvent] { eventsStorage.all.compactMap { $0 } }

    /// Waits until the events so far satisfy `predicate`, or the agent stops.
    func events(until predicate: @escaping @Sendable ([AgentEvent]) -> Bool) async throws -> [AgentEvent] {
        try await eventsStorage.wait { events in events.contains { $0 == nil } || predicate(events.compactMap { $0 }) }
            .compactMap { $0 }
    }

    /// The error the agent stopped with (waits for it to stop).
    func outcome() async -> (any Error)? {
        // Cancelling the waiter (a test's time limit) stops the agent, which ends the wait.
        await withTaskCancellationHandler {
            do {
                try await task.value
                return nil
            } catch {
                return error
            }
        } onCancel: { [task] in
            task.cancel()
        }
    }

    func stop() async {
        task.cancel()
        _ = try? await task.value
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Events from event-loop threads, and a way to wait for a condition on them.
final class EventLog<Event: Sendable>: Sendable {
    private struct Waiter {
        let id: Int
        let predicate: @Sendable ([Event]) -> Bool
        let continuation: CheckedContinuation<[Event], Never>
    }

    private struct State {
        var events: [Event] = []
        var waiters: [Waiter] = []
        var nextWaiterID = 0
    }

    private let state = NIOLockedValueBox(State())

    func append(_ event: Event) {
        let ready = state.withLockedValue { state -> [(CheckedContinuation<[Event], Never>, [Event])] in
            state.events.append(event)
            let snapshot = state.events
            var ready: [(CheckedContinuation<[Event], Never>, [Event])] = []
            state.waiters.removeAll { waiter in
                guard waiter.predicate(snapshot) else { return false }
                ready.append((waiter.continuation, snapshot))
                return true
            }
            return ready
        }
        for (continuation, events) in ready { continuation.resume(returning: events) }
    }

    var all: [Event] { state.withLockedValue { $0.events } }

    /// Waits until `predicate` holds for the events so far. Throws CancellationError when
    /// the waiting task is cancelled (as the suite's time limit does) before that.
    func wait(_ predicate: @escaping @Sendable ([Event]) -> Bool) async throws -> [Event] {
        let id = state.withLockedValue { state in
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        let events = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let snapshot: [Event]? = state.withLockedValue { state in
                    // A cancellation that came before this waiter was added has already run
                    // its handler, and found nothing to resume.
                    if predicate(state.events) || Task.isCancelled { return state.events }
                    state.waiters.append(Waiter(id: id, predicate: predicate, continuation: continuation))
                    return nil
                }
                if let snapshot { continuation.resume(returning: snapshot) }
            }
        } onCancel: {
            let cancelled = state.withLockedValue { state -> (Waiter, [Event])? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return (state.waiters.remove(at: index), state.events)
            }
            if let (waiter, events) = cancelled { waiter.continuation.resume(returning: events) }
        }
        guard predicate(events) else { throw CancellationError() }
        return events
    }
}

/// Runs curl and returns its standard output and exit status.
func curl(_ arguments: [String]) async throws -> (status: Int32, output: String) {
    let process = try ChildProcess("curl", arguments)
    return await process.waitForExit()
}

/// nghttpd (nghttp2's own server) as an h2c app on a loopback port, serving `files`
/// (name: contents) from a directory of their own.
struct Nghttpd {
    let process: ChildProcess
    let port: Int

    static func start(serving files: [String: String]) async throws -> Nghttpd {
        let directory = try makeTemporaryDirectory("nghttpd")
        for (name, contents) in files {
            try contents.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
        }
        let port = try await ServerBootstrapProbe.bind()
        let process = try ChildProcess("nghttpd", ["--no-tls", "-v", "-a", "127.0.0.1", "-d", directory, "\(port)"])
        do {
            try await process.waitForOutput { $0.contains("listen 127.0.0.1:\(port)") }
        } catch {
            process.terminate()
            throw error
        }
        return Nghttpd(process: process, port: port)
    }
}
