import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import PinholeTunnel

/// One tunnel name as the registry file keeps it: whose it is (a digest of the token,
/// never the token), its port and aliases, and when it was last used.
struct RegistryRecord: Codable, Equatable, Sendable {
    var name: String
    /// The SHA-256 of the owning token, in hex.
    var owner: String
    var port: Int?
    var aliases: [String]
    var share: ServiceShare?
    /// When a connection for it last registered or left; for one connected when this was
    /// written, when it was written.
    var lastUsed: Date
    /// Connected when written: a relay killed since could not say when it stopped, so on
    /// loading the name counts as used at that moment.
    var connected: Bool
}

/// The registry kept across restarts (`registry.json` beside the relay's certificate),
/// so names, aliases and dedicated ports keep their owners. Written whole, to a
/// temporary file that then replaces it, so a crash leaves the old file or the new one.
/// Writes happen off the event loops, the latest state first, several changes at once
/// when they come faster than the disk.
final class RegistryFile: Sendable {
    struct Contents: Codable {
        var version: Int
        var tunnels: [RegistryRecord]
    }

    static let version = 1

    let path: String
    private let logger: Logger
    private let writer = NIOLockedValueBox(Writer())
    private let queue = DispatchQueue(label: "pinhole.relay.registry-file")

    private struct Writer {
        /// Makes the records of the latest state (built on the writer's thread, not under
        /// the registry's lock, which every public request takes).
        var pending: (@Sendable () -> [RegistryRecord])?
        var scheduled: UInt64 = 0
        var written: UInt64 = 0
        var writing = false
        var waiters: [(version: UInt64, promise: EventLoopPromise<Void>)] = []
    }

    init(path: String, logger: Logger) {
        self.path = path
        self.logger = logger
    }

    /// The records in the file; none when there is no file yet.
    func load() throws(RelayError) -> [RegistryRecord] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let advice =
            "repair it, or move it away to start with no names kept (each name and dedicated port then goes to "
            + "the first token that asks)"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .configuration("the registry file \(path) cannot be read; \(advice)")
        }
        let contents: Contents
        do {
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            contents = try decoder.decode(Contents.self, from: data)
        } catch {
            throw .configuration(
                "the registry file \(path) is corrupt (\(HandshakeFraming.describe(error))); \(advice)")
        }
        guard contents.version == Self.version else {
            throw .configuration(
                "the registry file \(path) has version \(contents.version), this relay reads \(Self.version); \(advice)"
            )
        }
        return contents.tunnels
    }

    /// Writes `records` now, on the caller's thread: at start (which also proves the
    /// folder is writable) and at shutdown.
    func writeNow(_ records: [RegistryRecord]) throws(RelayError) {
        // On the writer's queue, so it never overlaps a queued write of the same file.
        let result = queue.sync { Result { try write(records) } }
        do {
            try result.get()
        } catch {
            throw .configuration(
                "cannot write the registry file \(path): \(error); give --cert in a folder the relay may write to")
        }
    }

    /// Queues the records `snapshot` makes to be written, replacing any not written yet.
    func schedule(_ snapshot: @escaping @Sendable () -> [RegistryRecord]) {
        let start = writer.withLockedValue { writer -> Bool in
            writer.pending = snapshot
            writer.scheduled += 1
            guard !writer.writing else { return false }
            writer.writing = true
            return true
        }
        if start { queue.async { self.drain() } }
    }

    /// Succeeds once everything scheduled so far is on disk (or failed to be written,
    /// which is logged: the relay keeps serving without it).
    func flushed(on loop: any EventLoop) -> EventLoopFuture<Void> {
        writer.withLockedValue { writer in
            guard writer.written < writer.scheduled else { return loop.makeSucceededVoidFuture() }
            let promise = loop.makePromise(of: Void.self)
            writer.waiters.append((writer.scheduled, promise))
            return promise.futureResult
        }
    }

    private func drain() {
        while true {
            let next = writer.withLockedValue { writer -> (UInt64, @Sendable () -> [RegistryRecord])? in
                guard let pending = writer.pending else {
                    writer.writing = false
                    return nil
                }
                writer.pending = nil
                return (writer.scheduled, pending)
            }
            guard let (version, snapshot) = next else { return }
            do {
                try write(snapshot())
            } catch {
                // Warning, though a library logs at info or below: the operator must hear
                // that names may not keep their owners across a restart.
                logger.warning(
                    "cannot write the registry file; names may not keep their owners across a restart",
                    metadata: ["path": "\(path)", "error": "\(error)"])
            }
            let done = writer.withLockedValue { writer -> [EventLoopPromise<Void>] in
                writer.written = version
                let done = writer.waiters.filter { $0.version <= version }.map(\.promise)
                writer.waiters.removeAll { $0.version <= version }
                return done
            }
            for promise in done { promise.succeed() }
        }
    }

    private func write(_ records: [RegistryRecord]) throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try encoder.encode(Contents(version: Self.version, tunnels: records.sorted { $0.name < $1.name }))
        let temporary = path + ".tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard descriptor >= 0 else { throw Self.posixError() }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        try handle.write(contentsOf: data)
        try handle.synchronize()
        try handle.close()
        guard rename(temporary, path) == 0 else { throw Self.posixError() }
    }

    private static func posixError() -> POSIXError {
        POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
    }
}
