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
        atexit {
            Terminal.requestLines.drain()
            Terminal.standardOutput.flush()
        }
        return writer
    }()

    /// The lines of finished requests, gathered per event loop tick (see `LoopBatchedLines`).
    static let requestLines = LoopBatchedLines(writer: standardOutput)

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

/// Runs `body` until it returns or the process gets SIGINT/SIGTERM. On the signal,
/// `stopping` runs first (to answer what is in flight), then `body` is cancelled, so
/// the command can say goodbye properly instead of dying mid-line. Returns what
/// `stopping` returned, or nil when `body` ended by itself. A second signal, for
/// someone who does not want to wait, exits at once.
@discardableResult
func runUntilInterrupted<Result: Sendable>(
    _ body: @escaping @Sendable () async throws -> Void, stopping: @escaping @Sendable () async -> Result
) async throws -> Result? {
    let policy = NIOLockedValueBox(InterruptPolicy())
    let signals = AsyncStream<Int32> { continuation in
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                switch policy.withLockedValue({ $0.received() }) {
                case .stopCleanly: continuation.yield(number)
                case .exitNow: exit(128 + number)
                }
            }
            source.resume()
            SignalSources.keep(source)
        }
    }
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            try await body()
            return nil
        }
        group.addTask {
            for await _ in signals { return await stopping() }
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next() ?? nil
    }
}

func runUntilInterrupted(_ body: @escaping @Sendable () async throws -> Void) async throws {
    try await runUntilInterrupted(body, stopping: {})
}

/// What a SIGINT or SIGTERM means: the first asks for a clean stop (answer what is in
/// flight, say goodbye); any later one comes from someone who will not wait, and exits.
struct InterruptPolicy {
    enum Action: Equatable {
        case stopCleanly, exitNow
    }

    private var count = 0

    mutating func received() -> Action {
        count += 1
        return count == 1 ? .stopCleanly : .exitNow
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
