import Foundation
import Testing

/// `GET /api/har` against the HAR 1.2 structure (http://www.softwareishard.com/blog/har-12-spec/):
/// every required field there, with its type.
@Suite("Inspector HAR export", .timeLimit(.minutes(1)))
struct HARTests {
    @Test("all requests, or a selection, export as valid HAR 1.2")
    func export() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        _ = try await harness.send("/hello?a=1&b=two+words", ["-H", "cookie: session=abc; theme=dark"])
        _ = try await harness.send(
            "/echo", ["-H", "content-type: application/x-www-form-urlencoded", "--data-binary", "name=Ada&x=%C3%A9"])
        _ = try await harness.send("/download?bytes=300", [])
        _ = try await harness.waitForRecord { $0.path.hasPrefix("/download") && $0.state == .complete }

        let all = try await harness.json("/api/har")
        let entries = try validate(all)
        #expect(entries.count == 3)
        let hello = try #require(entries.first { ($0.request["url"] as? String)?.contains("/hello") == true })
        let query = try #require(hello.request["queryString"] as? [[String: String]])
        #expect(query.contains { $0["name"] == "b" && $0["value"] == "two words" })
        let cookies = try #require(hello.request["cookies"] as? [[String: String]])
        #expect(cookies.map { $0["name"] } == ["session", "theme"])
        let form = try #require(entries.first { ($0.request["url"] as? String)?.hasSuffix("/echo") == true })
        let post = try #require(form.request["postData"] as? [String: Any])
        #expect(post["mimeType"] as? String == "application/x-www-form-urlencoded")
        #expect(post["text"] as? String == "name=Ada&x=%C3%A9")
        let params = try #require(post["params"] as? [[String: String]])
        #expect(params.contains { $0["name"] == "x" && $0["value"] == "é" })
        let download = try #require(entries.first { ($0.request["url"] as? String)?.contains("/download") == true })
        let content = try #require(download.response["content"] as? [String: Any])
        #expect(content["size"] as? Int == 300)
        #expect(download.response["bodySize"] as? Int == 300)

        let firstTwo = harness.inspector.store.all().prefix(2).map { String($0.id) }
        let selection = try await harness.json("/api/har?ids=\(firstTwo.joined(separator: ","))")
        #expect(try validate(selection).count == 2)
    }

    struct Entry {
        var request: [String: Any]
        var response: [String: Any]
    }

    /// Checks `document` against HAR 1.2's required fields and types; returns its entries.
    func validate(_ document: [String: Any]) throws -> [Entry] {
        let log = try #require(document["log"] as? [String: Any], "no log object")
        #expect(log["version"] as? String == "1.2")
        let creator = try #require(log["creator"] as? [String: Any], "no creator")
        #expect(creator["name"] is String && creator["version"] is String)
        if let pages = log["pages"] { #expect(pages is [Any]) }
        let entries = try #require(log["entries"] as? [[String: Any]], "no entries array")
        return try entries.map { entry in
            let started = try #require(entry["startedDateTime"] as? String)
            #expect(ISO8601DateFormatter.withFractionalSeconds.date(from: started) != nil, "\(started)")
            #expect((entry["time"] as? Double).map { $0 >= 0 } == true)
            #expect(entry["cache"] is [String: Any])
            let timings = try #require(entry["timings"] as? [String: Any])
            for name in ["send", "wait", "receive"] {
                #expect((timings[name] as? Double).map { $0 >= 0 } == true, "timings.\(name)")
            }
            for name in ["blocked", "dns", "connect", "ssl"] where timings[name] != nil {
                #expect((timings[name] as? Double).map { $0 >= -1 } == true, "timings.\(name)")
            }
            let request = try #require(entry["request"] as? [String: Any])
            for name in ["method", "url", "httpVersion"] { #expect(request[name] is String, "request.\(name)") }
            for name in ["cookies", "headers", "queryString"] {
                let list = try #require(request[name] as? [[String: Any]], "request.\(name)")
                #expect(list.allSatisfy { $0["name"] is String && $0["value"] is String })
            }
            #expect(request["headersSize"] is Int && request["bodySize"] is Int)
            if let post = request["postData"] as? [String: Any] {
                #expect(post["mimeType"] is String && post["text"] is String && post["params"] is [Any])
            }
            let response = try #require(entry["response"] as? [String: Any])
            #expect(response["status"] is Int)
            for name in ["statusText", "httpVersion", "redirectURL"] {
                #expect(response[name] is String, "response.\(name)")
            }
            for name in ["cookies", "headers"] { #expect(response[name] is [[String: Any]], "response.\(name)") }
            #expect(response["headersSize"] is Int && response["bodySize"] is Int)
            let content = try #require(response["content"] as? [String: Any])
            #expect(content["size"] is Int && content["mimeType"] is String)
            return Entry(request: request, response: response)
        }
    }
}
