import NIOCore
import PinholeTLS
import Testing

@Suite("TLS shutdown in memory")
struct TLSShutdownTests {
    private func connectedPair() throws -> InMemoryTLSPair {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay", dnsNames: ["relay"]))
        let pair = try InMemoryTLSPair(
            client: try TestCertificates.clientContext(.pinned(identity.fingerprint)),
            server: try TestCertificates.serverContext(identity), serverName: "relay")
        try pair.connect()
        return pair
    }

    @Test("the client's close sends close_notify; the server ends without a truncation error")
    func clientCloses() throws {
        let pair = try connectedPair()
        try pair.client.close().wait()
        try pair.interact()
        #expect(!pair.server.isActive)
        #expect(pair.serverRecorder.errors.isEmpty)
        #expect(pair.clientRecorder.errors.isEmpty)
    }

    @Test("the server's close sends close_notify; the client ends without a truncation error")
    func serverCloses() throws {
        let pair = try connectedPair()
        try pair.send("last words", from: pair.server)
        try pair.server.close().wait()
        try pair.interact()
        #expect(pair.clientRecorder.received == "last words")
        #expect(!pair.client.isActive)
        #expect(pair.clientRecorder.errors.isEmpty)
    }

    @Test("a close whose close_notify the peer never takes still closes, after the close timeout")
    func closeWhenThePeerStopsReading() throws {
        let pair = try connectedPair()
        // A peer that stopped reading: nothing written from now on reaches it.
        try pair.client.pipeline.syncOperations.addHandler(StalledWrites(), position: .first)
        var closed = false
        pair.client.close().assumeIsolated().whenComplete { _ in closed = true }
        pair.client.embeddedEventLoop.run()
        #expect(pair.client.isActive && !closed, "the close waits for close_notify to be written")
        pair.client.embeddedEventLoop.advanceTime(by: TLSHandler.closeTimeout)
        #expect(!pair.client.isActive && closed)
    }

    @Test("half-close: after the peer's close_notify we can still answer")
    func halfClose() throws {
        let pair = try connectedPair()
        try pair.server.syncOptions!.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        // EmbeddedChannel closes fully on any close; a socket would shut down only its output.
        try pair.client.pipeline.syncOperations.addHandler(OutputShutdownSimulator(), position: .first)
        try pair.send("request", from: pair.client)
        try pair.client.close(mode: .output).wait()
        try pair.interact()
        #expect(pair.serverRecorder.inputClosed)
        #expect(pair.server.isActive)
        try pair.send("response after half-close", from: pair.server)
        #expect(pair.clientRecorder.received == "response after half-close")
        #expect(pair.serverRecorder.errors.isEmpty)
        #expect(pair.clientRecorder.errors.isEmpty, "\(pair.clientRecorder.errors)")
    }

    @Test("a connection cut without close_notify is reported as truncated")
    func truncation() throws {
        let pair = try connectedPair()
        pair.server.pipeline.fireChannelInactive()
        #expect(pair.serverRecorder.tlsErrors == [.truncated])
        #expect("\(TLSError.truncated)".contains("close_notify"))
    }
}

/// Stands in for a socket's `shutdown(SHUT_WR)`, which EmbeddedChannel lacks.
private final class OutputShutdownSimulator: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if mode == .output {
            promise?.succeed(())
        } else {
            context.close(mode: mode, promise: promise)
        }
    }
}

/// Holds every write, as a socket whose peer has stopped reading does; fails them at close.
private final class StalledWrites: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer
    private var held: [EventLoopPromise<Void>?] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        held.append(promise)
    }

    func flush(context: ChannelHandlerContext) {}

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        for promise in held { promise?.fail(ChannelError.ioOnClosedChannel) }
        held = []
        context.close(mode: mode, promise: promise)
    }
}
