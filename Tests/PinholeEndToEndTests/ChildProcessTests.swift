import Foundation
import PinholeTestSupport
import Testing

/// The harness itself: peers the tests start must stop when told, or every test run
/// leaves servers listening behind it.
@Suite("Test peers")
struct ChildProcessTests {
    @Test("a peer that keeps the default SIGTERM action stops on terminate()")
    func terminateStopsPeer() async throws {
        let sleeper = try ChildProcess("sleep", ["600"])
        sleeper.terminate()
        // A bound, not synchronisation: without it a regression hangs the whole run.
        let status = await withTaskGroup(of: Int32?.self) { group in
            group.addTask { await sleeper.waitForExit().status }
            group.addTask {
                // SIGKILL cannot be blocked; it ends the wait above so the group can finish.
                guard (try? await Task.sleep(for: .seconds(10))) != nil else { return nil }  // the peer exited
                kill(sleeper.processIdentifier, SIGKILL)
                return nil
            }
            defer { group.cancelAll() }
            return await group.next()!
        }
        #expect(status == SIGTERM, "sleep was still running 10 s after SIGTERM")
    }

    @Test("the exit is reported only with all of the output", .timeLimit(.minutes(1)))
    func exitComesWithAllOutput() async throws {
        // A waiter once saw curl's exit with its output still unread. Peers that write and
        // exit at once are where that shows: 20 at a time, each writing 108,894 bytes.
        let expected = (1...20_000).map { "\($0)\n" }.joined()
        // Run together, so the readers and the termination handlers contend.
        let results = try await withThrowingTaskGroup(of: (Int32, String).self) { group in
            for _ in 0..<20 {
                let peer = try ChildProcess("seq", ["1", "20000"])
                group.addTask { await peer.waitForExit() }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for (status, output) in results {
            #expect(status == 0)
            #expect(output == expected, "got \(output.utf8.count) bytes of \(expected.utf8.count)")
        }
    }
}
