import Foundation
import NIOConcurrencyHelpers

/// A peer program (openssl, curl, nghttp, ...) run by a test, with its combined
/// output collected so the test can wait for a line instead of sleeping.
public final class ChildProcess: Sendable {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String

        public init(description: String) {
            self.description = description
        }
    }

    private struct State {
        var output = ""
        var exitStatus: Int32?
        var waiters: [(predicate: @Sendable (String, Int32?) -> Bool, continuation: CheckedContinuation<Void, Never>)] =
            []
    }

    public let commandLine: String
    private let process: Process
    private let input: Pipe
    private let state = NIOLockedValueBox(State())

    /// Starts `executable` (looked up on PATH) with `arguments`.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        currentDirectory: String? = nil
    ) throws {
        commandLine = ([executable] + arguments).joined(separator: " ")
        process = Process()
        process.executableURL = URL(fileURLWithPath: try Self.locate(executable))
        process.arguments = arguments
        if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let output = Pipe()
        input = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = input
        let state = self.state
        // Each read and its append happen under `reading`, so the termination handler's
        // last read cannot overtake one in flight on the handler's thread: a waiter for
        // the exit would then have seen the output without its last piece (it happened
        // once in CI: curl's whole output missing). Foundation on Linux never calls the
        // readability handler at end of file, so the termination handler reads the rest.
        let reading = NIOLock()
        output.fileHandleForReading.readabilityHandler = { handle in
            reading.withLock {
                let data = handle.availableData
                guard !data.isEmpty else {
                    handle.readabilityHandler = nil
                    return
                }
                Self.update(state) { $0.output += String(decoding: data, as: UTF8.self) }
            }
        }
        process.terminationHandler = { process in
            output.fileHandleForReading.readabilityHandler = nil
            reading.withLock {
                let rest = output.fileHandleForReading.readDataToEndOfFile()
                Self.update(state) {
                    $0.output += String(decoding: rest, as: UTF8.self)
                    $0.exitStatus = process.terminationStatus
                }
            }
        }
        try Self.withSignalsUnblocked { try process.run() }
    }

    /// The child inherits the spawning thread's signal mask, and the threads tests
    /// run on block SIGTERM. A peer like nghttpd never unblocks it, so `terminate()`
    /// would leave it running after the test; spawn it with nothing blocked.
    private static func withSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
        var nothing = sigset_t()
        var previous = sigset_t()
        sigemptyset(&nothing)
        pthread_sigmask(SIG_SETMASK, &nothing, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }

    deinit {
        if process.isRunning { process.terminate() }
    }

    public static func locate(_ executable: String) throws -> String {
        if executable.contains("/") { return executable }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin"] {
            let candidate = "\(directory)/\(executable)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Failure(description: "\(executable) is not installed (bash .ci/run installs the test peers)")
    }

    private static func update(_ state: NIOLockedValueBox<State>, _ change: (inout State) -> Void) {
        let ready: [CheckedContinuation<Void, Never>] = state.withLockedValue { state in
            change(&state)
            let snapshot = (state.output, state.exitStatus)
            var ready: [CheckedContinuation<Void, Never>] = []
            state.waiters.removeAll { waiter in
                guard waiter.predicate(snapshot.0, snapshot.1) else { return false }
                ready.append(waiter.continuation)
                return true
            }
            return ready
        }
        ready.forEach { $0.resume() }
    }

    public var output: String { state.withLockedValue { $0.output } }

    /// Waits until the output matches `predicate` or the process exits; returns the output.
    /// Cancelling the waiting task (a test's time limit) terminates the process, which
    /// ends the wait.
    @discardableResult
    public func waitForOutput(_ predicate: @escaping @Sendable (String) -> Bool) async throws -> String {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let satisfied = state.withLockedValue { state -> Bool in
                    if predicate(state.output) || state.exitStatus != nil { return true }
                    state.waiters.append(({ output, status in predicate(output) || status != nil }, continuation))
                    return false
                }
                if satisfied { continuation.resume() }
            }
        } onCancel: {
            terminate()
        }
        let output = self.output
        guard predicate(output) else {
            throw Failure(description: "\(commandLine) exited before printing what the test waits for:\n\(output)")
        }
        return output
    }

    /// Waits for exit and returns the status and the whole output. Cancelling the
    /// waiting task terminates the process.
    public func waitForExit() async -> (status: Int32, output: String) {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let exited = state.withLockedValue { state -> Bool in
                    if state.exitStatus != nil { return true }
                    state.waiters.append(({ _, status in status != nil }, continuation))
                    return false
                }
                if exited { continuation.resume() }
            }
        } onCancel: {
            terminate()
        }
        return state.withLockedValue { ($0.exitStatus ?? -1, $0.output) }
    }

    public func send(_ text: String) {
        input.fileHandleForWriting.write(Data(text.utf8))
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
    }

    public var processIdentifier: Int32 { process.processIdentifier }
}
