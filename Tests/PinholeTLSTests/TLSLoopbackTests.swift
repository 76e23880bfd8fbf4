import NIOCore
import NIOPosix
import PinholeTestSupport
import Testing

@testable import PinholeTLS

/// Streams a `PatternStream` out while hashing everything that comes in, respecting
/// writability; half-closes when done sending and reports when the peer's close_notify arrives.
private final class TransferHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    struct Result: Sendable {
        var sentDigest: String
        var receivedDigest: String
        var receivedBytes: Int
        var maxBufferedWritableBytes: Int
        var peakPendingPlaintext: Int
    }

    private var source: PatternStream
    private let sentHash = SHA256Hasher()
    private let receivedHash = SHA256Hasher()
    private var receivedBytes = 0
    private var maxBuffered = 0
    private var sending = false
    private var pumping = false
    private var doneSending = false
    private var doneReceiving = false
    private let finished: EventLoopPromise<Result>

    init(totalBytes: Int, finished: EventLoopPromise<Result>) {
        self.source = PatternStream(totalBytes: totalBytes)
        self.finished = finished
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSEvent {
            sending = true
            pump(context: context)
        } else if let event = event as? ChannelEvent, event == .inputClosed {
            doneReceiving = true
            finishIfDone(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pump(context: context)
    }

    private func pump(context: ChannelHandlerContext) {
        // Writing can change writability, which calls back in here: do not nest.
        guard sending, !doneSending, !pumping else { return }
        pumping = true
        defer { pumping = false }
        // Flushing can make the channel writable again, and that event is ignored while
        // pumping, so keep going until the socket pushes back or the data runs out.
        repeat {
            while context.channel.isWritable, let chunk = source.next(allocator: context.channel.allocator) {
                sentHash.update(chunk)
                // No flush per chunk: the TLS handler must still make writability reflect
                // what it holds, or this loop would run until all 256 MiB were queued.
                context.write(wrapOutboundOut(chunk), promise: nil)
                let buffered = (try? context.channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
                maxBuffered = max(maxBuffered, buffered)
            }
            context.flush()
        } while context.channel.isWritable && !source.isFinished
        if source.isFinished {
            doneSending = true
            context.close(mode: .output, promise: nil)
            finishIfDone(context: context)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        receivedBytes += buffer.readableBytes
        receivedHash.update(buffer)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finished.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        // Closed before both directions finished (after they did, this does nothing):
        // the test fails instead of waiting for ever.
        finished.fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    private func finishIfDone(context: ChannelHandlerContext) {
        guard doneSending, doneReceiving else { return }
        let tls = try? context.pipeline.syncOperations.handler(type: TLSHandler.self)
        finished.succeed(
            Result(
                sentDigest: sentHash.finalize(), receivedDigest: receivedHash.finalize(),
                receivedBytes: receivedBytes, maxBufferedWritableBytes: maxBuffered,
                peakPendingPlaintext: tls?.peakPendingBytes ?? .max))
        context.close(promise: nil)
    }
}

@Suite("TLS over loopback sockets")
struct TLSLoopbackTests {
    @Test("256 MiB each way with checksums, buffered bytes bounded", .timeLimit(.minutes(5)))
    func bulkBothWays() async throws {
        let total = 256 * 1024 * 1024
        let identity = try CertificateGenerator.selfSigned(
            CertificateRequest(commonName: "relay", ipAddresses: ["127.0.0.1"]))
        let serverContext = try TestCertificates.serverContext(identity)
        let clientContext = try TestCertificates.clientContext(.pinned(identity.fingerprint))
        let group = MultiThreadedEventLoopGroup.singleton

        let serverDone = group.next().makePromise(of: TransferHandler.Result.self)
        let listener = try await ServerBootstrap(group: group)
            .childChannelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: serverContext), TransferHandler(totalBytes: total, finished: serverDone),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }

        let clientDone = group.next().makePromise(of: TransferHandler.Result.self)
        _ = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: clientContext, serverName: "127.0.0.1"),
                        TransferHandler(totalBytes: total, finished: clientDone),
                    ])
                }
            }
            .connect(to: listener.localAddress!).get()

        let client = try await clientDone.futureResult.get()
        let server = try await serverDone.futureResult.get()

        #expect(client.receivedBytes == total && server.receivedBytes == total)
        #expect(client.receivedDigest == server.sentDigest)
        #expect(server.receivedDigest == client.sentDigest)
        // The bounds that keep memory flat: the channel's queue never holds more than a
        // chunk or two of ciphertext (the writer stops when it is not writable), and
        // the TLS handler never holds more than its eager-encryption threshold plus
        // one chunk of plaintext, although the writer never flushes per chunk.
        #expect(client.maxBufferedWritableBytes <= 1024 * 1024)
        #expect(server.maxBufferedWritableBytes <= 1024 * 1024)
        #expect(client.peakPendingPlaintext <= 128 * 1024, "\(client.peakPendingPlaintext)")
        #expect(server.peakPendingPlaintext <= 128 * 1024, "\(server.peakPendingPlaintext)")
    }
}
