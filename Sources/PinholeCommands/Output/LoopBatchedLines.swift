import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PinholeCore

/// The lines of finished requests, made on the event loop that finished them, without a
/// lock, and handed to the output writer once per loop tick.
///
/// Per line, the writer's lock was the only thing the embedded relay's two event loops
/// shared (relay + agent serve every request on the one loop of the tunnel): on two
/// cores, a loop preempted while holding it stalled the other. Now each loop takes that
/// lock once per tick, for all the lines the tick made.
///
/// A record announced as waiting, or one finished off the event loops, goes the shared
/// way, at once: its line must also leave the live lines kept under the writer's lock.
final class LoopBatchedLines: Sendable {
    /// One event loop's lines not yet handed over, and how it makes them: a copy of the
    /// writer's settings, with a clock of its own.
    // Unchecked: a batch is reached only from its own event loop's thread (through
    // `batches` there, and the hand-over task it schedules on that loop), and from
    // `drain`, which runs the hand-over on that loop too.
    private final class Batch: @unchecked Sendable {
        let loop: any EventLoop
        var format: RequestLogFormat
        var bytes: [UInt8] = []
        var lines = 0
        var handOverScheduled = false

        init(loop: any EventLoop, format: RequestLogFormat) {
            self.loop = loop
            self.format = format
        }
    }

    private let writer: OutputWriter<RequestLogFormat>
    private let batches = ThreadSpecificVariable<Batch>()
    /// Every loop's batch, for `drain`.
    private let all = NIOLockedValueBox<[Batch]>([])
    /// A tick that makes this much hands it over at once.
    private let handOverBytes: Int

    init(writer: OutputWriter<RequestLogFormat>, handOverBytes: Int = 32 << 10) {
        self.writer = writer
        self.handOverBytes = handOverBytes
    }

    /// The line for `record`, to be written with the others of this loop tick.
    func append(_ record: ExchangeRecord) {
        guard record.waitingID == nil, let loop = MultiThreadedEventLoopGroup.currentEventLoop else {
            writer.append { line, log in log.append(record, to: &line) }
            return
        }
        let batch = batches.currentValue ?? makeBatch(on: loop)
        batch.format.append(record, to: &batch.bytes)
        batch.lines += 1
        if batch.bytes.count >= handOverBytes {
            handOver(batch)
        } else if !batch.handOverScheduled {
            // Tasks run after the I/O of the tick: the lines of every request it finished.
            batch.handOverScheduled = true
            loop.assumeIsolated().execute { self.handOver(batch) }
        }
    }

    /// Hands every loop's lines to the writer, waiting at most `timeout` for each loop;
    /// for lines that must come before what is printed next (the goodbye line).
    func drain(timeout: TimeAmount = .seconds(1)) {
        for batch in all.withLockedValue({ $0 }) {
            if batch.loop.inEventLoop {
                handOver(batch)
                continue
            }
            let done = DispatchSemaphore(value: 0)
            batch.loop.execute {
                self.handOver(batch)
                done.signal()
            }
            _ = done.wait(timeout: .now() + .nanoseconds(Int(timeout.nanoseconds)))
        }
    }

    private func makeBatch(on loop: any EventLoop) -> Batch {
        var format = RequestLogFormat()
        format.adoptSettings(of: writer.read { $0 })
        let batch = Batch(loop: loop, format: format)
        batches.currentValue = batch
        all.withLockedValue { $0.append(batch) }
        return batch
    }

    private func handOver(_ batch: Batch) {
        batch.handOverScheduled = false
        guard batch.lines > 0 else { return }
        writer.append(lines: batch.lines) { output, log in
            output += batch.bytes
            // Settings changed since (the tunnel's name) apply from the next tick on.
            batch.format.adoptSettings(of: log)
        }
        batch.bytes.removeAll(keepingCapacity: true)
        batch.lines = 0
    }
}
