import Foundation
import NIOCore
import PinholeAgent
import PinholeCore
import PinholeTestSupport
import Testing

/// What the request log hears of each kind of request, through the relay and agent and
/// through the embedded relay; and the lines the built agent prints of them.
@Suite("The request log: waiting requests, reasons, cut responses, columns", .timeLimit(.minutes(2)))
struct RequestLogTests {

    /// A public side to reach the app through: a relay and an agent, or an embedded agent.
    private struct Tunnel {
        let agent: TestAgent
        let relay: TestRelay?
        let url: String

        static func start(embedded: Bool, appPort: Int) async throws -> Tunnel {
            let target = TargetAddress(host: "127.0.0.1", port: appPort)
            // Longer than the default 1 s: a quick request must never be announced, and these
            // suites share two cores with the others, which has stretched one past a second.
            let threshold = TimeAmount.seconds(3)
            if embedded {
                let agent = TestAgent.start(relay: nil, target: target, waitingThreshold: threshold)
                let info = try await agent.tunnel()
                return Tunnel(agent: agent, relay: nil, url: "http://127.0.0.1:\(info.port)")
            }
            let relay = try await TestRelay.start()
            let agent = TestAgent.start(relay: relay, target: target, waitingThreshold: threshold)
            _ = try await agent.tunnel()
            return Tunnel(agent: agent, relay: relay, url: "")
        }

        func curl(_ path: String, _ extra: [String] = []) -> [String] {
            relay?.curl("demo", path, extra) ?? (["-sS"] + extra + [url + path])
        }

        /// Waits for the record of the request to `path`.
        func record(of path: String) async throws -> ExchangeRecord {
            let events = try await agent.events { events in events.contains { $0.record?.path == path } }
            return try #require(events.lazy.compactMap(\.record).first { $0.path == path })
        }

        func stop() async {
            await agent.stop()
            await relay?.stop()
        }
    }

    @Test(
        "a request the app holds is announced while it waits; its record, when it ends, carries the same id",
        arguments: [false, true])
    func waiting(embedded: Bool) async throws {
        let (app, port) = try await startRawApp()
        defer { app.terminate() }
        let tunnel = try await Tunnel.start(embedded: embedded, appPort: port)
        let held = Task { try await curl(tunnel.curl("/hold")) }
        let events = try await tunnel.agent.events { events in events.contains { $0.waiting != nil } }
        let waiting = try #require(events.lazy.compactMap(\.waiting).first)
        #expect(waiting.method == "GET" && waiting.path == "/hold")
        #expect(!events.contains { $0.record?.path == "/hold" }, "announced while it still waits")

        _ = try await curl(tunnel.curl("/release"))
        #expect(try await held.value.output == "released\n")
        let record = try await tunnel.record(of: "/hold")
        #expect(record.waitingID == waiting.id)
        #expect(record.status == 200 && record.bytesOut == 9 && record.outcome == .complete)
        #expect(try await tunnel.record(of: "/release").waitingID == nil, "a quick request is never announced")
        await tunnel.stop()
    }

    @Test(
        "a response the app cuts short is recorded as such; the app's own 500 as the app's", arguments: [false, true])
    func cutShort(embedded: Bool) async throws {
        let (app, port) = try await startRawApp()
        defer { app.terminate() }
        let tunnel = try await Tunnel.start(embedded: embedded, appPort: port)
        let cut = try await curl(tunnel.curl("/short"))
        // Through the relay, the client gets a 502 (the relay sees the stream reset before
        // it passed the head on): that is the relay's business; the agent's record is tested.
        if embedded { #expect(cut.status == 18, "the client sees the cut: \(cut.output)") }
        let record = try await tunnel.record(of: "/short")
        #expect(record.status == 200 && record.bytesOut == 9, "\(record)")
        #expect(
            record.outcome == .cutShort(.targetClosedEarly(target: "http://127.0.0.1:\(port)"), expected: 100),
            "\(record.outcome)")

        _ = try await curl(tunnel.curl("/error"))
        let failed = try await tunnel.record(of: "/error")
        #expect(failed.status == 500 && failed.outcome == .complete && failed.bytesOut == 15)
        await tunnel.stop()
    }

    @Test("a 502 for an app that is not there is recorded with its reason and its size", arguments: [false, true])
    func unreachable(embedded: Bool) async throws {
        let port = try await ServerBootstrapProbe.bind()
        let tunnel = try await Tunnel.start(embedded: embedded, appPort: port)
        let answer = try await curl(
            tunnel.curl("/nothing", ["-d", "four", "-o", "/dev/null", "-w", "%{size_download}"]))
        let record = try await tunnel.record(of: "/nothing")
        #expect(record.status == 502 && record.method == "POST")
        #expect(
            record.outcome
                == .answeredByPinhole(
                    .targetUnreachable(target: "http://127.0.0.1:\(port)", reason: "connection refused")),
            "\(record.outcome)")
        #expect(String(record.bytesOut) == answer.output)
        await tunnel.stop()
    }

    // MARK: The built agent's lines

    /// Runs the built agent, embedded, in front of raw_app.py, and returns it with its
    /// public port once its header is out.
    private func startAgent(_ arguments: [String], appPort: Int) async throws -> (ChildProcess, Int) {
        let binaries = builtExecutablesDirectory
        try #require(FileManager.default.isExecutableFile(atPath: binaries + "/agent"), "build first: swift build")
        let agent = try ChildProcess(
            binaries + "/agent", [String(appPort), "--bind", "127.0.0.1", "--public-port", "0"] + arguments)
        let header = try await agent.waitForOutput { $0.contains("authority") || $0.contains("tunnel_ready") }
        let port = try #require(
            header.firstMatch(of: /127\.0\.0\.1:(\d+)/).flatMap { Int($0.output.1) }, "\(header)")
        return (agent, port)
    }

    @Test("the agent's text lines sit under its headings, long methods and paths included")
    func textLines() async throws {
        let (app, appPort) = try await startRawApp()
        defer { app.terminate() }
        let (agent, port) = try await startAgent([], appPort: appPort)
        defer { agent.terminate() }
        let long = "/" + String(repeating: "a-long-path-segment/", count: 5)
        _ = try await curl(["-sS", "-X", "PROPFIND", "http://127.0.0.1:\(port)\(long)"])
        _ = try await curl(["-sS", "http://127.0.0.1:\(port)/short"])
        let output = try await agent.waitForOutput { $0.contains("cut short") && $0.hasSuffix("\n") }
        let lines = output.split(separator: "\n").map(String.init)
        let heading = try #require(lines.first { $0.hasPrefix("time ") })
        let propfind = try #require(lines.first { $0.contains(" PROPFIND ") }, "\(output)")
        let short = try #require(lines.first { $0.contains("cut short") })
        for line in [propfind, short] {
            for column in ["status", "duration", "size"] {
                let edge = heading.range(of: column).map { heading[..<$0.upperBound].count }
                let words = line.split(separator: " ").map(String.init)
                let value =
                    column == "status"
                    ? words[3] : column == "duration" ? words[4] + " " + words[5] : words[6] + " " + words[7]
                #expect(line.range(of: value).map { line[..<$0.upperBound].count } == edge, "\(column): \(line)")
            }
        }
        #expect(propfind.contains("/a-long-path-segment/") && propfind.contains("…"))
        #expect(short.hasSuffix("cut short after 9 of 100 bytes: the app closed the connection"), "\(short)")
    }

    @Test("JSON events: time, byte counts, error and tunnel; a fatal error is an event too")
    func jsonLines() async throws {
        let (app, appPort) = try await startRawApp()
        defer { app.terminate() }
        let (agent, port) = try await startAgent(["--log-format", "json"], appPort: appPort)
        defer { agent.terminate() }
        _ = try await curl(["-sS", "-d", "four", "http://127.0.0.1:\(port)/short"])
        let output = try await agent.waitForOutput { $0.contains(#""event":"request""#) && $0.hasSuffix("\n") }
        let line = try #require(output.split(separator: "\n").first { $0.contains(#""event":"request""#) })
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["bytes_in"] as? Int == 4 && object["bytes_out"] as? Int == 9)
        #expect(object["error"] as? String == "cut short after 9 of 100 bytes: the app closed the connection")
        #expect(object["tunnel"] as? String == "embedded" && object["protocol"] as? String == "HTTP/1.1")
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)

        // The same port again: the agent cannot listen, and says so as an event.
        let second = try ChildProcess(
            builtExecutablesDirectory + "/agent",
            [String(appPort), "--bind", "127.0.0.1", "--public-port", String(port), "--log-format", "json"])
        let (status, failure) = await second.waitForExit()
        #expect(status != 0)
        #expect(failure.contains(#""event":"error""#), "\(failure)")
    }
}

extension AgentEvent {
    fileprivate var record: ExchangeRecord? {
        if case .request(let record) = self { return record }
        return nil
    }

    fileprivate var waiting: RequestWatch.Waiting? {
        if case .waiting(let waiting) = self { return waiting }
        return nil
    }
}
