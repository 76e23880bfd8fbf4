@preconcurrency import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// The command's output. Standard output goes through one `OutputWriter`, so that
/// request lines, written in batches by a thread of their own, and the other lines stay
/// in order; other lines go out at once (scripts reading through a pipe see each line,
/// such as `tunnel_ready`, the moment it is printed). Whatever is left is written at exit.
enum Terminal {
    static let standardOutput: OutputWriter<RequestLogFormat> = {
        let writer = OutputWriter(descriptor: STDOUT_FILENO, state: RequestLogFormat())
        atexit { Terminal.standardOutput.flush() }
        return writer
    }()

    static func out(_ line: String) {
        standardOutput.append(urgent: true) { output, _ in
            output.append(line)
            output.append(UInt8(ascii: "\n"))
        }
    }

    /// To standard error, after what standard output still holds (bounded: see `flush`).
    static func error(_ line: String) {
        standardOutput.flush()
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// One JSON object per line.
    static func json(_ object: [String: any Sendable]) {
        guard
            let data = try? JSONSerialization.data(
                withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        else { return }
        out(String(decoding: data, as: UTF8.self))
    }

    /// Writes what standard output holds; waits two seconds at most.
    static func flush() {
        standardOutput.flush()
    }
}

/// Runs `body` until it returns or the process gets SIGINT/SIGTERM, which cancel it
/// (so the command can say goodbye properly instead of dying mid-line).
func runUntilInterrupted(_ body: @escaping @Sendable () async throws -> Void) async throws {
    let signals = AsyncStream<Int32> { continuation in
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            SignalSources.keep(source)
        }
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await body() }
        group.addTask {
            for await _ in signals { return }
        }
        defer { group.cancelAll() }
        try await group.next()
    }
}

/// Dispatch sources must stay referenced to keep firing. A command watches signals
/// once, for its whole life, so they are simply kept here.
private enum SignalSources {
    private static let sources = NIOLockedValueBox<[any DispatchSourceSignal]>([])

    static func keep(_ source: any DispatchSourceSignal) {
        sources.withLockedValue { $0.append(source) }
    }
}
