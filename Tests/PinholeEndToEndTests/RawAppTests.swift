import Foundation
import PinholeCore
import PinholeTestSupport
import Testing

/// The agent reads HTTP/1 itself; these answers come from a Python app that writes
/// exact bytes, as servers with other habits than SwiftNIO's do.
@Suite("An app that is not SwiftNIO: HTTP/1.0, chunks, reuse, garbage", .timeLimit(.minutes(2)))
struct RawAppTests {
    @Test("each answer arrives as the app meant it, or as a 502 that says exactly what was wrong")
    func rawAnswers() async throws {
        let (app, port) = try await startRawApp()
        defer { app.terminate() }
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(relay: relay, target: TargetAddress(host: "127.0.0.1", port: port))
        defer {
            Task {
                await agent.stop(); await relay.stop()
            }
        }
        _ = try await agent.tunnel()

        // A body that ends with the connection, twice: the second needs a new connection.
        for _ in 0..<2 {
            let old = try await curl(relay.curl("demo", "/old", ["-w", "%{http_code}"]))
            #expect(old.output == "ended by close\n200")
        }

        let chunked = try await curl(relay.curl("demo", "/chunked", ["-w", "%{http_code}"]))
        #expect(chunked.output == "first second third\n200")

        // Three requests on one public connection reuse one connection to the app.
        let url = relay.curl("demo", "/keep")
        let kept = try await curl(url + [url.last!, url.last!])
        let lines = kept.output.split(separator: "\n")
        #expect(lines.count == 3 && Set(lines).count == 1, "\(kept.output)")

        let garbage = try await curl(relay.curl("demo", "/garbage", ["-w", "\n%{http_code}"]))
        #expect(garbage.output.hasSuffix("\n502"))
        #expect(garbage.output.contains("sent a status line that is not HTTP/1.x"), "\(garbage.output)")

        // What went wrong at the app, said exactly: a bad status code, a raw newline, no answer at all.
        let target = "http://127.0.0.1:\(port)"
        let expected = [
            "/bad-status":
                "pinhole: invalid response on the way: \(target) sent a status line whose status code is not "
                + "three digits: 'HTTP/1.1 abc OK'",
            "/raw-newline":
                "pinhole: invalid response on the way: \(target) sent a status line that is not HTTP/1.x: "
                + "'oops\\nsecond line\\r\\n'",
            "/no-answer": "pinhole: \(target) accepted the request and closed the connection without answering",
        ]
        for (path, body) in expected {
            let answer = try await curl(relay.curl("demo", path, ["-w", "%{http_code}"]))
            #expect(answer.output == body + "\n502", "\(path)")
            MessageHygiene.check(body, secret: TestRelay.token)
        }
    }

    @Test("a WebSocket passes through relay and agent, and through the embedded relay, byte for byte both ways")
    func webSocket() async throws {
        let (app, port) = try await startRawApp()
        defer { app.terminate() }
        let target = TargetAddress(host: "127.0.0.1", port: port)
        let relay = try await TestRelay.start()
        let agent = TestAgent.start(relay: relay, target: target)
        let embedded = TestAgent.start(relay: nil, target: target)
        defer {
            Task {
                await agent.stop(); await embedded.stop(); await relay.stop()
            }
        }
        _ = try await agent.tunnel()
        let paths = [
            (relay.addresses.publicPort, "demo.\(TestRelay.domain)"),
            (try await embedded.tunnel().port, "app.test"),
        ]
        for (publicPort, host) in paths {
            for ending in ["app-closes", "client-closes"] {
                let client = try ChildProcess(
                    "python3", [testScript("ws_client.py"), String(publicPort), host, ending])
                let (status, output) = await client.waitForExit()
                #expect(status == 0, "via \(host), \(ending): \(output)")
                let last = ending == "app-closes" ? "close-now" : "last words"
                #expect(output == "ok \(11 + 24 + 2 * 1024 * 1024 + last.utf8.count)\n", "via \(host): \(output)")
            }
        }
        // Both closed: each agent logs its two WebSockets as ended, with the 101.
        for each in [agent, embedded] {
            let events = try await each.events { events in
                events.filter { if case .request(let record) = $0 { record.path == "/ws" } else { false } }.count == 2
            }
            let statuses = events.compactMap { if case .request(let record) = $0 { record.status } else { nil } }
            #expect(statuses == [101, 101])
        }
        // A handshake the app declines is an ordinary answer.
        for (publicPort, host) in paths {
            let declined = try await curl([
                "-sS", "-H", "Host: \(host)", "-H", "Connection: Upgrade", "-H", "Upgrade: websocket",
                "-w", "%{http_code}", "http://127.0.0.1:\(publicPort)/ws",
            ])
            #expect(declined.output == "426", "via \(host): \(declined.output)")
        }
    }

    @Test("answers that come before the request body end their streams: the tunnel's streams do not run out")
    func earlyAnswersReleaseStreams() async throws {
        let (app, port) = try await startRawApp()
        defer { app.terminate() }
        let relay = try await TestRelay.start()
        // Two streams at once at most: two streams left open would stall the tunnel.
        let agent = TestAgent.start(
            relay: relay, target: TargetAddress(host: "127.0.0.1", port: port), maxConcurrentStreams: 2)
        defer {
            Task {
                await agent.stop(); await relay.stop()
            }
        }
        _ = try await agent.tunnel()
        // Larger than a stream's window, so the answer always comes while the upload goes on.
        let file = try makeTemporaryDirectory("early-answer") + "/upload.bin"
        #expect(FileManager.default.createFile(atPath: file, contents: Data(count: 4 * 1024 * 1024)))
        defer { try? FileManager.default.removeItem(atPath: file) }

        for _ in 0..<4 {
            let rejected = try await curl(
                relay.curl("demo", "/reject", ["-T", file, "-H", "Expect:", "-w", "\n%{http_code}"]))
            #expect(rejected.output.hasSuffix("too large\n413"), "\(rejected.output)")
        }
        let after = try await curl(relay.curl("demo", "/keep", ["-w", "\n%{http_code}"]))
        #expect(after.output.hasSuffix("\n200"), "\(after.output)")
    }
}
