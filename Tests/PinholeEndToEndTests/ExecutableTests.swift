import Foundation
import PinholeTestSupport
import Testing

@Suite("The built relay and agent executables, driven by a script", .timeLimit(.minutes(2)))
struct ExecutableTests {
    private let script = testScript("executables.sh")

    @Test("relay and agent as processes: tunnel_ready, GET, POST, then 503 once the agent stops")
    func executables() async throws {
        let binaries = builtExecutablesDirectory
        try #require(
            FileManager.default.isExecutableFile(atPath: binaries + "/relay"),
            "build the executables first: swift build")
        let app = try await LocalApp.start()
        defer { Task { await app.stop() } }
        let run = try ChildProcess("bash", [script, binaries, String(app.port)])
        let (status, output) = await run.waitForExit()
        #expect(status == 0, "\(output)")
        #expect(output.hasSuffix("ok\n"), "\(output)")
    }
}
