import Foundation
import PinholeTestSupport
import Testing

@Suite("libFuzzer on the HTTP/1 parsers, a short run", .timeLimit(.minutes(5)))
struct FuzzTests {
    @Test("Tests/Fuzz/fuzz.sh builds the target and runs it for 10 s without a crash")
    func shortRun() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/fuzz.sh").path
        let run = try ChildProcess("bash", [script, "10"])
        let (status, output) = await run.waitForExit()
        #expect(status == 0, "\(output.suffix(3_000))")
        #expect(output.contains("Done ") && output.contains(" runs in "), "\(output.suffix(3_000))")
    }
}
