import Foundation
import Logging
import NIOCore
import NIOEmbedded
import PinholeCore
import Testing

@Suite("Public request handler in memory: errors")
struct PublicRequestHandlerErrorTests {
    /// Keeps what is logged through it.
    final class LogRecorder: @unchecked Sendable {
        // Unchecked: `entries` is only touched under `lock`.
        private let lock = NSLock()
        private var entries: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = []

        func append(_ level: Logger.Level, _ message: String, _ metadata: Logger.Metadata) {
            lock.withLock { entries.append((level, message, metadata)) }
        }

        var all: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] { lock.withLock { entries } }
    }

    struct RecordingLogHandler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.append(event.level, event.message.description, metadata.merging(event.metadata ?? [:]) { $1 })
        }
    }

    struct BrokenPipe: Error, CustomStringConvertible {
        var description: String { "the pipe broke" }
    }

    @Test("an error closes the connection, and says at debug level which one, what it was doing, and why")
    func errorIsLogged() throws {
        let recorder = LogRecorder()
        let logger = Logger(label: "test") { _ in RecordingLogHandler(recorder: recorder) }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            PublicRequestHandler(router: PublicRequestHandlerTests.SlowTarget(delay: .seconds(5)), logger: logger))
        try channel.connect(to: SocketAddress(ipAddress: "192.0.2.7", port: 1)).wait()
        try channel.writeInbound(ByteBuffer(string: "GET /held HTTP/1.1\r\nHost: a\r\n\r\n"))
        channel.pipeline.fireErrorCaught(BrokenPipe())
        #expect(!channel.isActive)

        let entries = recorder.all
        #expect(entries.count == 1)
        let entry = try #require(entries.first)
        #expect(entry.level == .debug)
        #expect(entry.message == "closing a public connection after an error")
        #expect(entry.metadata["error"] == "the pipe broke")
        #expect(entry.metadata["request"] == "GET /held")
        #expect(entry.metadata["while"] == "waiting for the response to request 1")
        #expect(entry.metadata["client"] == "192.0.2.7")
    }
}
