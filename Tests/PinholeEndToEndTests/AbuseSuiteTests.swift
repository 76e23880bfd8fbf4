import Foundation
import PinholeTestSupport
import Testing

@Suite("The fault and abuse suite, short form, through the built executables", .timeLimit(.minutes(4)))
struct AbuseSuiteTests {
    @Test("Tests/scripts/abuse_suite.sh --short passes every scenario (see the README's Tests section)")
    func shortSuite() async throws {
        let binaries = builtExecutablesDirectory
        try #require(
            FileManager.default.isExecutableFile(atPath: binaries + "/relay"),
            "build the executables first: swift build")
        let run = try ChildProcess("bash", [testScript("abuse_suite.sh"), binaries, "--short"])
        let (status, output) = await run.waitForExit()
        #expect(status == 0, "\(output)")
        #expect(output.hasSuffix("ok\n"), "\(output)")
    }
}
