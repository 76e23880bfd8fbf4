import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeInspector
import PinholeTestSupport

/// A local app, an agent with the embedded relay forwarding to it, and the agent's
/// inspector on a loopback port: what a developer runs, in one process.
final class InspectorHarness: Sendable {
    let app: LocalApp
    let inspector: Inspector
    let server: InspectorServer
    /// Where the public side listens (the embedded relay).
    let publicPort: Int
    let deadlines: NIOLockedValueBox<[DeadlineNotice]>
    private let agentTask: Task<Void, any Error>

    /// `target`, when given, replaces the local app as the agent's target (a gRPC app).
    static func start(
        limits: InspectorStore.Limits = .init(), target: TargetAddress? = nil
    ) async throws -> InspectorHarness {
        let app = try await LocalApp.start()
        let deadlines = NIOLockedValueBox<[DeadlineNotice]>([])
        let inspector = Inspector(limits: limits) { notice in deadlines.withLockedValue { $0.append(notice) } }
        let server = try await InspectorServer.start(inspector: inspector, host: "127.0.0.1", port: 0)
        let ready = AsyncStream<Int>.makeStream()
        let configuration = AgentConfiguration(
            target: target ?? TargetAddress(host: "127.0.0.1", port: app.port),
            mode: .embedded(bindHost: "127.0.0.1", publicPort: 0, publicHost: nil))
        let agent = Agent(
            configuration: configuration, group: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
            wrapTarget: { inspector.capture($0) },
            events: { event in
                if case .tunnelReady(let tunnel) = event { ready.continuation.yield(tunnel.port) }
            })
        let task = Task { try await agent.run() }
        var iterator = ready.stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw HarnessFailure("the agent never got ready") }
        return InspectorHarness(
            app: app, inspector: inspector, server: server, publicPort: port, deadlines: deadlines, agentTask: task)
    }

    private init(
        app: LocalApp, inspector: Inspector, server: InspectorServer, publicPort: Int,
        deadlines: NIOLockedValueBox<[DeadlineNotice]>, agentTask: Task<Void, any Error>
    ) {
        self.app = app
        self.inspector = inspector
        self.server = server
        self.publicPort = publicPort
        self.deadlines = deadlines
        self.agentTask = agentTask
    }

    func stop() async {
        agentTask.cancel()
        _ = try? await agentTask.value
        await server.stop()
        await app.stop()
    }

    var inspectorURL: String { "http://127.0.0.1:\(server.port)" }
    var publicURL: String { "http://127.0.0.1:\(publicPort)" }

    /// curl through the tunnel: `-sS` and `extra`, then the URL of `path`.
    func send(_ path: String, _ extra: [String] = []) async throws -> String {
        try await curl(["-sS", "--max-time", "20"] + extra + [publicURL + path])
    }

    /// The inspector's API, through curl: the status and the body.
    func api(
        _ method: String, _ path: String, body: String? = nil, headers: [String] = []
    ) async throws -> (status: Int, body: String) {
        var arguments = ["-sS", "--max-time", "20", "-X", method, "-w", "\n%{http_code}"]
        for header in headers { arguments += ["-H", header] }
        if let body { arguments += ["-H", "content-type: application/json", "--data-binary", body] }
        let output = try await curl(arguments + [inspectorURL + path])
        let split = output.range(of: "\n", options: .backwards)
        let status = Int(output[(split?.upperBound ?? output.startIndex)...]) ?? 0
        return (status, String(output[..<(split?.lowerBound ?? output.endIndex)]))
    }

    /// The API's JSON answer to GET `path`, as a dictionary.
    func json(_ path: String) async throws -> [String: Any] {
        let (status, body) = try await api("GET", path)
        guard status == 200 else { throw HarnessFailure("GET \(path) answered \(status): \(body)") }
        return try object(body)
    }

    /// Waits, by watching the store, until `predicate` holds for some record.
    func waitForRecord(_ predicate: @escaping @Sendable (CapturedRequest) -> Bool) async throws -> CapturedRequest {
        let found = AsyncStream<CapturedRequest>.makeStream()
        let store = inspector.store
        let check = { @Sendable in
            if let match = store.all().first(where: predicate) { found.continuation.yield(match) }
        }
        let token = store.observe { _ in check() }
        defer { store.stopObserving(token) }
        check()
        var iterator = found.stream.makeAsyncIterator()
        guard let record = await iterator.next() else { throw CancellationError() }
        return record
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func curl(_ arguments: [String]) async throws -> String {
    let process = try ChildProcess("curl", arguments)
    let (status, output) = await process.waitForExit()
    guard status == 0 else { throw HarnessFailure("curl \(arguments) failed (\(status)): \(output)") }
    return output
}

func object(_ text: String) throws -> [String: Any] {
    guard let value = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
        throw HarnessFailure("not a JSON object: \(text)")
    }
    return value
}
