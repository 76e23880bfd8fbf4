// Prints the cost of a TLS handshake and the bulk throughput through TLSHandler on
// loopback. Run it in release mode:  swift run -c release pinhole-tls-bench [--bytes MiB] [--handshakes N]
import Foundation
import NIOCore
import NIOEmbedded
import NIOPosix
import PinholeTLS

struct Options {
    var handshakes = 2000
    var megabytes = 2048

    init(_ arguments: [String]) {
        var iterator = arguments.makeIterator()
        while let argument = iterator.next() {
            switch argument {
            case "--handshakes": handshakes = iterator.next().flatMap(Int.init) ?? handshakes
            case "--bytes": megabytes = iterator.next().flatMap(Int.init) ?? megabytes
            default:
                print("usage: pinhole-tls-bench [--handshakes N] [--bytes MiB]")
                exit(2)
            }
        }
    }
}

func seconds(_ start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Handshakes with both ends in EmbeddedChannels: the CPU cost of TLS alone.
func inMemoryHandshakes(_ count: Int, client: TLSContext, server: TLSContext) throws -> Double {
    let start = ContinuousClock.now
    for _ in 0..<count {
        let clientChannel = EmbeddedChannel(handler: TLSHandler(context: client, serverName: "127.0.0.1"))
        let serverChannel = EmbeddedChannel(handler: TLSHandler(context: server))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 1)
        try serverChannel.connect(to: address).wait()
        try clientChannel.connect(to: address).wait()
        var moved = true
        while moved {
            moved = false
            while let bytes = try clientChannel.readOutbound(as: ByteBuffer.self) {
                try serverChannel.writeInbound(bytes)
                moved = true
            }
            while let bytes = try serverChannel.readOutbound(as: ByteBuffer.self) {
                try clientChannel.writeInbound(bytes)
                moved = true
            }
        }
        _ = try? clientChannel.finish()
        _ = try? serverChannel.finish()
    }
    return seconds(start)
}

/// Completes a promise when the handshake is done, then closes.
final class HandshakeWaiter: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Void>
    init(done: EventLoopPromise<Void>) { self.done = done }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSEvent {
            done.succeed(())
            context.close(promise: nil)
        }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { done.fail(error) }
}

/// Discards what it reads and counts it; completes at close_notify.
final class Sink: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    var count = 0
    let done: EventLoopPromise<Int>
    init(done: EventLoopPromise<Int>) { self.done = done }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { count += unwrapInboundIn(data).readableBytes }
    func channelInactive(context: ChannelHandlerContext) { done.succeed(count) }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { done.fail(error) }
}

/// Writes `total` bytes in 64 KiB chunks while the channel is writable, then closes.
final class Source: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var remaining: Int
    var started = false
    var writing = false
    let chunk: ByteBuffer
    init(total: Int) {
        remaining = total
        chunk = ByteBuffer(repeating: 0x5A, count: 64 * 1024)
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is TLSEvent {
            started = true
            pump(context: context)
        }
    }
    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context: context) }
    func pump(context: ChannelHandlerContext) {
        guard started, !writing, remaining > 0 else { return }
        writing = true
        defer { writing = false }
        while context.channel.isWritable, remaining > 0 {
            let slice = chunk.getSlice(at: 0, length: min(remaining, chunk.readableBytes))!
            remaining -= slice.readableBytes
            context.write(wrapOutboundOut(slice), promise: nil)
            if remaining == 0 || !context.channel.isWritable { context.flush() }
        }
        if remaining == 0 { context.close(promise: nil) }
    }
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "bench", ipAddresses: ["127.0.0.1"]))
let serverContext = try TLSContext(
    server: TLSServerConfiguration(identity: identity, applicationProtocols: ["pinhole/1"]))
let clientContext = try TLSContext(
    client: TLSClientConfiguration(trust: .pinned(identity.fingerprint), applicationProtocols: ["pinhole/1"]))

let memoryTime = try inMemoryHandshakes(options.handshakes, client: clientContext, server: serverContext)
print(
    String(
        format: "handshake, in memory (CPU of both sides): %8.1f µs each  (%d handshakes)",
        memoryTime / Double(options.handshakes) * 1e6, options.handshakes))

let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
let listener = try ServerBootstrap(group: group)
    .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(TLSHandler(context: serverContext))
        }
    }
    .bind(host: "127.0.0.1", port: 0).wait()
let port = listener.localAddress!.port!

func connect(_ handler: @escaping @Sendable () -> any ChannelHandler) throws -> Channel {
    try ClientBootstrap(group: group)
        .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    TLSHandler(context: clientContext, serverName: "127.0.0.1"), handler(),
                ])
            }
        }
        .connect(host: "127.0.0.1", port: port).wait()
}

let loopbackCount = options.handshakes / 2
let loopbackStart = ContinuousClock.now
for _ in 0..<loopbackCount {
    let done = group.next().makePromise(of: Void.self)
    _ = try connect { HandshakeWaiter(done: done) }
    try done.futureResult.wait()
}
let loopbackTime = seconds(loopbackStart)
print(
    String(
        format: "handshake, loopback TCP+TLS 1.3 (connect to first byte): %8.1f µs each  (%d connections)",
        loopbackTime / Double(loopbackCount) * 1e6, loopbackCount))

// Bulk: one connection, client to server, the server discarding.
let total = options.megabytes * 1024 * 1024
let bulkStart = ContinuousClock.now
let bulkDone = group.next().makePromise(of: Int.self)
let bulkListener = try ServerBootstrap(group: group)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([TLSHandler(context: serverContext), Sink(done: bulkDone)])
        }
    }
    .bind(host: "127.0.0.1", port: 0).wait()
_ = try ClientBootstrap(group: group)
    .channelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                TLSHandler(context: clientContext, serverName: "127.0.0.1"), Source(total: total),
            ])
        }
    }
    .connect(to: bulkListener.localAddress!).wait()
let bytes = try bulkDone.futureResult.wait()
let bulkTime = seconds(bulkStart)
print(
    String(
        format: "bulk, one connection, loopback: %8.0f MB/s  (%d MiB in %.2f s, %@)",
        Double(bytes) / bulkTime / 1e6, bytes / (1024 * 1024), bulkTime,
        bytes == total ? "all bytes arrived" : "BYTES MISSING"))
try listener.close().wait()
try bulkListener.close().wait()
try group.syncShutdownGracefully()
