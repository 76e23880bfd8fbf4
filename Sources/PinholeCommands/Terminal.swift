@preconcurrency import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// Writes whole lines straight to stdout/stderr, unbuffered, so scripts reading
/// through a pipe see each line (such as `tunnel_ready`) the moment it is printed.
enum Terminal {
    static func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func error(_ line: String) {
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
