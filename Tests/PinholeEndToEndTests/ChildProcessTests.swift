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
}
