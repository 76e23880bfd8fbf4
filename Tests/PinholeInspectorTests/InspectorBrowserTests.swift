import Foundation
import PinholeTestSupport
import Testing

/// The page in a real headless browser: Debian's chromium and chromium-driver, driven by
/// Python selenium (Tests/scripts/inspector_browser.py). Screenshots go to
/// PINHOLE_SCREENSHOTS (the README's come from `PINHOLE_SCREENSHOTS=docs`), else a
/// temporary directory.
@Suite("Inspector page in Chromium", .timeLimit(.minutes(2)))
struct InspectorBrowserTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/inspector_browser.py").path

    static var browserInstalled: Bool {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/chromedriver")
    }

    @Test(
        "live list, body rendering, replay and edit-and-replay, in Chromium",
        .enabled(if: browserInstalled, "chromium and chromium-driver are not installed (scripts/test installs them)"))
    func page() async throws {
        let harness = try await InspectorHarness.start()
        defer { Task { await harness.stop() } }
        let screenshots =
            try ProcessInfo.processInfo.environment["PINHOLE_SCREENSHOTS"]
            ?? makeTemporaryDirectory("inspector-shots")
        let browser = try ChildProcess(
            try testPython(), [Self.script, harness.inspectorURL, harness.publicURL, screenshots])
        let (status, output) = await browser.waitForExit()
        if status == 77 {
            Issue.record("Chromium could not start, so the page was not tested: \(output)")
            return
        }
        #expect(status == 0, "\(output)")
        #expect(output.contains("PASS"), "\(output)")

        // What the app got, whatever the page showed.
        let records = harness.inspector.store.all()
        let replayedEcho = records.first { $0.replayOf != nil && $0.path == "/echo" }
        #expect(replayedEcho?.status == 200, "the replay never reached the app")
        #expect(String(buffer: try #require(replayedEcho).responseBody.kept).contains(#""user": "ada""#))
        let edited = records.first { $0.replayOf != nil && $0.path == "/headers" }
        #expect(String(buffer: try #require(edited).responseBody.kept).contains("x-edited: from-the-browser"))
        for name in ["inspector-list.png", "inspector-detail.png"] {
            let size = (try? FileManager.default.attributesOfItem(atPath: screenshots + "/" + name)[.size]) as? Int
            #expect((size ?? 0) > 10_000, "\(name) missing or empty")
        }
    }
}
