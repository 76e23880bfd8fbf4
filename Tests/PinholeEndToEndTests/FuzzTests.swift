import Foundation
import PinholeTestSupport
import Testing

/// One after another: each builds its target with swiftc, and the machine's cores are few.
@Suite("libFuzzer targets, a short run each", .serialized, .timeLimit(.minutes(5)))
struct FuzzTests {
    @Test(
        "Tests/Fuzz/fuzz.sh builds the target and runs it without a crash",
        arguments: [("http1", 10), ("handshake", 5), ("router", 5)])
    func shortRun(target: String, seconds: Int) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/fuzz.sh").path
        let run = try ChildProcess("bash", [script, target, String(seconds)])
        let (status, output) = await run.waitForExit()
        #expect(status == 0, "\(output.suffix(3_000))")
        #expect(output.contains("Done ") && output.contains(" runs in "), "\(output.suffix(3_000))")
    }
}
