import Foundation
import PinholeInspector
import PinholeTestSupport
import Testing

/// The JSON API over real sockets: requests go through an agent's embedded relay to a
/// local app, and curl asks the inspector what it saw.
@Suite("Inspector API", .timeLimit(.minutes(1)))
struct InspectorAPITests {
    @Test("a request through the agent is listed with the log's field names, and its detail has bodies and headers")
    func captured() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        let echoed = try await harness.send(
            "/echo?x=1", ["-H", "content-type: application/json", "--data-binary", #"{"greeting":"hello"}"#])
        #expect(echoed == #"{"greeting":"hello"}"#)
        let record = try await harness.waitForRecord { $0.path == "/echo?x=1" && $0.state == .complete }

        let list = try await harness.json("/api/requests")
        let requests = try #require(list["requests"] as? [[String: Any]])
        let summary = try #require(requests.first { $0["id"] as? Int == record.id })
        #expect(summary["method"] as? String == "POST")
        #expect(summary["path"] as? String == "/echo?x=1")
        #expect(summary["status"] as? Int == 200)
        #expect(summary["bytes_in"] as? Int == 20)
        #expect(summary["bytes_out"] as? Int == 20)
        #expect(summary["protocol"] as? String == "HTTP/1.1", "the log's protocol: what the client spoke")
        #expect((summary["duration_ms"] as? Double).map { $0 >= 0 } == true)
        let time = try #require(summary["time"] as? String)
        #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: time) != nil, "time \(time) is not RFC 3339")

        let detail = try await harness.json("/api/requests/\(record.id)")
        let request = try #require(detail["request"] as? [String: Any])
        let requestBody = try #require(request["body"] as? [String: Any])
        #expect(decode(requestBody["base64"]) == #"{"greeting":"hello"}"#)
        let headers = try #require(request["headers"] as? [[String: String]])
        #expect(headers.contains { $0["name"]?.lowercased() == "content-type" && $0["value"] == "application/json" })
        let response = try #require(detail["response"] as? [String: Any])
        #expect(decode((response["body"] as? [String: Any])?["base64"]) == #"{"greeting":"hello"}"#)
        #expect(detail["client"] as? String == "127.0.0.1", "the detail's client is the summary's")
        let forwarded = try #require(detail["forwarded"] as? [[String: String]])
        #expect(forwarded.contains { $0["name"] == "x-forwarded-for" && $0["value"] == "127.0.0.1" })
        let timing = try #require(detail["timing"] as? [String: Any])
        #expect(timing["at_app_ms"] is Double && timing["queued_ms"] is Double && timing["streaming_ms"] is Double)
        let curlLine = try #require(detail["curl"] as? String)
        #expect(curlLine.contains("-X POST") && curlLine.contains(#"--data-binary '{"greeting":"hello"}'"#))
    }

    @Test("replay sends the request to the app again, marked as a replay of the original")
    func replay() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        _ = try await harness.send("/echo", ["--data-binary", "once more"])
        let original = try await harness.waitForRecord { $0.path == "/echo" && $0.state == .complete }
        let seen = harness.app.requestsSeen

        let (status, body) = try await harness.api("POST", "/api/requests/\(original.id)/replay?wait=1")
        #expect(status == 201, "\(body)")
        let replay = try object(body)
        let id = try #require(replay["id"] as? Int)
        #expect(replay["replay_of"] as? Int == original.id)
        #expect(replay["status"] as? Int == 200)
        #expect(harness.app.requestsSeen == seen + 1)
        let stored = try #require(harness.inspector.store.record(id))
        #expect(String(buffer: stored.responseBody.kept) == "once more")
        let detail = try await harness.json("/api/requests/\(original.id)")
        #expect(detail["replays"] as? [Int] == [id])
    }

    @Test("edit and replay: the app sees the changed method, path, header and body")
    func editAndReplay() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        _ = try await harness.send("/headers", ["-H", "x-user: debug"])
        let original = try await harness.waitForRecord { $0.path == "/headers" && $0.state == .complete }

        let edits = #"{"headers":[{"name":"x-user","value":"edited"},{"name":"x-extra","value":"1"}]}"#
        let (status, body) = try await harness.api("POST", "/api/requests/\(original.id)/replay?wait=1", body: edits)
        #expect(status == 201, "\(body)")
        let id = try #require(try object(body)["id"] as? Int)
        let seenByApp = String(buffer: try #require(harness.inspector.store.record(id)).responseBody.kept)
        #expect(seenByApp.contains("x-user: edited"), "\(seenByApp)")
        #expect(seenByApp.contains("x-extra: 1"))
        #expect(!seenByApp.contains("x-user: debug"))

        let post = #"{"method":"POST","path":"/upload","body":"twelve bytes"}"#
        let (postStatus, postBody) = try await harness.api(
            "POST", "/api/requests/\(original.id)/replay?wait=1", body: post)
        #expect(postStatus == 201, "\(postBody)")
        let postID = try #require(try object(postBody)["id"] as? Int)
        let answer = String(buffer: try #require(harness.inspector.store.record(postID)).responseBody.kept)
        #expect(answer.hasPrefix("12 "), "the app should have read 12 bytes: \(answer)")
    }

    @Test("bad replays are refused with a reason: unknown id, bad method, a body only partly kept")
    func badReplays() async throws {
        let harness = try await InspectorHarness.start(limits: .init(bodyBytes: 1024))
        defer { Task { await harness.stop() } }
        #expect(try await harness.api("POST", "/api/requests/999/replay").status == 404)
        let big = String(repeating: "x", count: 10_000)
        _ = try await harness.send("/upload", ["--data-binary", big])
        let record = try await harness.waitForRecord { $0.path == "/upload" && $0.state == .complete }
        #expect(record.requestBody.totalBytes == 10_000)
        #expect(record.requestBody.kept.readableBytes == 1024)
        let (status, body) = try await harness.api("POST", "/api/requests/\(record.id)/replay")
        #expect(status == 409)
        #expect(body.contains("only the first 1024 were kept"))
        let bad = try await harness.api(
            "POST", "/api/requests/\(record.id)/replay", body: #"{"method":"GE T","body":"x"}"#)
        #expect(bad.status == 400)
    }

    @Test("DELETE /api/requests empties the list")
    func clear() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        _ = try await harness.send("/hello")
        _ = try await harness.waitForRecord { $0.path == "/hello" && $0.state == .complete }
        #expect(try await harness.api("DELETE", "/api/requests").status == 204)
        #expect((try await harness.json("/api/requests")["requests"] as? [Any])?.isEmpty == true)
    }

    @Test("the live feed sends each request as it happens")
    func liveFeed() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        let feed = try ChildProcess("curl", ["-sSN", "--max-time", "30", harness.inspectorURL + "/api/events"])
        defer { feed.terminate() }
        try await feed.waitForOutput { $0.contains("event: hello") }
        _ = try await harness.send("/hello?live=1")
        let output = try await feed.waitForOutput { $0.contains(#""path":"/hello?live=1""#) && $0.contains("complete") }
        #expect(output.contains("event: request"))
    }

    @Test("a held request is pending, and the deadline hook fires once its caller's deadline passes")
    func heldRequest() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        let held = try ChildProcess(
            "curl", ["-sS", "-H", "x-envoy-expected-rq-timeout-ms: 300", harness.publicURL + "/slow?ms=20000"])
        defer { held.terminate() }
        let pending = try await harness.waitForRecord { $0.path == "/slow?ms=20000" }
        #expect(pending.state == .pending)
        #expect(pending.deadline?.source == "x-envoy-expected-rq-timeout-ms")
        let summary = try await harness.json("/api/requests/\(pending.id)")
        #expect(summary["state"] as? String == "pending")
        #expect(summary["status"] == nil)
        #expect(summary["deadline_ms"] as? Double == 300)
        // The notice is published with the record's state; wait on the store, not a clock.
        let notices = AsyncStream<Void>.makeStream()
        let token = harness.inspector.store.observe { _ in notices.continuation.yield() }
        defer { harness.inspector.store.stopObserving(token) }
        var changes = notices.stream.makeAsyncIterator()
        while harness.deadlines.withLockedValue({ $0.isEmpty }) {
            _ = await changes.next()
        }
        let notice = try #require(harness.deadlines.withLockedValue { $0.first })
        #expect(notice.id == pending.id)
        #expect(notice.message.contains("deadline"))
    }
}

extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}

func decode(_ base64: Any?) -> String? {
    (base64 as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
}
