import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PinholeCore
import Testing

@testable import PinholeCommands

@Suite("The output writer: batched, in order, and never blocking its callers")
struct OutputWriterTests {
    /// A pipe: the writer gets the write end, the test reads the other.
    private struct Pipe {
        let read: Int32
        let write: Int32

        init() throws {
            var ends: [Int32] = [0, 0]
            try #require(pipe(&ends) == 0)
            read = ends[0]
            write = ends[1]
        }

        func close() {
            _ = Foundation.close(read)
            _ = Foundation.close(write)
        }
    }

    /// Starts reading `descriptor` on a thread of its own (now, not when a task gets a
    /// turn: the test then blocks in `flush`), until `done` holds for what came.
    private func startReading(
        _ descriptor: Int32, until done: @escaping @Sendable (String) -> Bool
    ) -> AsyncStream<
        String
    > {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        Thread {
            var received: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let count = chunk.withUnsafeMutableBytes { Foundation.read(descriptor, $0.baseAddress, 65536) }
                if count <= 0 { break }
                received += chunk[..<count]
                if done(String(decoding: received, as: UTF8.self)) { break }
            }
            continuation.yield(String(decoding: received, as: UTF8.self))
            continuation.finish()
        }.start()
        return stream
    }

    @Test("lines come out whole and in order, and flush writes what is left")
    func inOrder() async throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let writer = OutputWriter(descriptor: pipe.write, state: RequestLogFormat())
        for number in 0..<2_000 {
            writer.append(urgent: number % 500 == 0) { output, _ in
                output.append(decimal: number)
                output.append(UInt8(ascii: "\n"))
            }
        }
        writer.flush()
        let expected = (0..<2_000).map { "\($0)\n" }.joined()
        let output = await startReading(pipe.read) { $0.count >= expected.count }.first { _ in true }
        #expect(output == expected)
        writer.stop()
    }

    @Test("a reader that stops reading never blocks the caller: lines are dropped, and counted once")
    func dropsWhenStuck() async throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let writer = OutputWriter(descriptor: pipe.write, state: RequestLogFormat(), limit: 4096)
        let line = Array(repeating: UInt8(ascii: "x"), count: 99) + [UInt8(ascii: "\n")]
        // Nobody reads the pipe: once its 64 KiB are full, the writer's thread waits,
        // and 4 KiB more wait in memory; the rest is dropped (this loop must not hang).
        var dropped = 0
        for _ in 0..<2_000 where !writer.append({ output, _ in output += line }) {
            dropped += 1
        }
        #expect(dropped > 0 && dropped < 2_000 - 4096 / 100)
        let notice = "(\(dropped) lines dropped: the output did not keep up)\n"
        let output = startReading(pipe.read) { $0.hasSuffix(notice) }
        writer.flush(timeout: 60)
        let received = await output.first { _ in true } ?? ""
        #expect(received.hasSuffix(notice))
        #expect(received.components(separatedBy: "lines dropped").count == 2, "said once")
        let lines = received.split(separator: "\n").filter { $0.hasPrefix("x") }
        #expect(lines.count == 2_000 - dropped, "every line not counted as dropped arrived")
        writer.stop()
    }

    @Test("request lines made on two event loops all come out, each loop's in order")
    func linesFromEventLoops() async throws {
        let pipe = try Pipe()
        defer { pipe.close() }
        let writer = OutputWriter(descriptor: pipe.write, state: RequestLogFormat(style: .json))
        let lines = LoopBatchedLines(writer: writer, handOverBytes: 4096)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let count = 300
        // Read from the start: the lines are more than a pipe holds.
        let output = startReading(pipe.read) { $0.components(separatedBy: "\n").count > 2 * count }
        for loop in 0..<2 {
            // One tick makes them all: most wait for its end, some go at 4 KiB.
            try await group.next().submit {
                for number in 0..<count {
                    lines.append(
                        ExchangeRecord(
                            method: "GET", path: "/\(loop)/\(number)", status: 200, duration: .milliseconds(1),
                            startedAt: .now(), bytesIn: 0, bytesOut: 13, outcome: .complete))
                }
            }.get()
        }
        lines.drain()
        writer.flush()
        let received = await output.first { _ in true } ?? ""
        let paths = received.split(separator: "\n").compactMap { line in
            line.range(of: "\"path\":\"").map { line[$0.upperBound...].prefix { $0 != "\"" } }
        }
        for loop in 0..<2 {
            #expect(paths.filter { $0.hasPrefix("/\(loop)/") } == (0..<count).map { "/\(loop)/\($0)"[...] })
        }
        writer.stop()
        try await group.shutdownGracefully()
    }
}
