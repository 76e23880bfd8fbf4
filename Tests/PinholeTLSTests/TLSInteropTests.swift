import Foundation
import NIOCore
import NIOPosix
import PinholeTLS
import PinholeTestSupport
import Testing

/// Collects plaintext and completes once `expected` bytes arrived (or the channel ended).
private final class Collector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var text = ""
    private var negotiated: String?
    private let until: String
    private let send: String
    private let done: EventLoopPromise<(String, String?)>

    init(send: String, until: String, done: EventLoopPromise<(String, String?)>) {
        self.send = send
        self.until = until
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let negotiated) = event as? TLSEvent {
            self.negotiated = negotiated
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: send)), promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        text += String(buffer: unwrapInboundIn(data))
        if text.contains(until) {
            done.succeed((text, negotiated))
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        done.fail(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
    }
}

/// Echoes one line back, then closes with close_notify.
private final class LineEcho: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var line = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        line += String(buffer: unwrapInboundIn(data))
        guard line.contains("\n") else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "echo: " + line)), promise: nil)
        context.close(promise: nil)
    }
}

@Suite("TLS interop with OpenSSL's own tools", .timeLimit(.minutes(2)))
struct TLSInteropTests {
    private func writeIdentity(_ identity: TLSIdentity) throws -> (certificate: String, key: String) {
        let directory = try makeTemporaryDirectory("interop")
        let paths = (directory + "/server.crt", directory + "/server.key")
        try identity.write(certificatePath: paths.0, keyPath: paths.1)
        return paths
    }

    /// A TLS server on 127.0.0.1 that echoes a line per connection.
    private func lineEchoServer(_ context: TLSContext) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([TLSHandler(context: context), LineEcho()])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    @Test("our client against `openssl s_server -alpn`")
    func clientAgainstSServer() async throws {
        let identity = try CertificateGenerator.selfSigned(
            CertificateRequest(commonName: "relay", ipAddresses: ["127.0.0.1"]))
        let files = try writeIdentity(identity)
        let server = try ChildProcess(
            "openssl",
            [
                "s_server", "-accept", "127.0.0.1:0", "-cert", files.certificate, "-key", files.key,
                "-alpn", "h2,pinhole/1", "-rev", "-naccept", "1",
            ])
        defer { server.terminate() }
        let banner = try await server.waitForOutput { $0.contains("ACCEPT 127.0.0.1:") && $0.hasSuffix("\n") }
        let port = try #require(
            banner.split(separator: "\n").first { $0.hasPrefix("ACCEPT") }?.split(separator: ":").last.flatMap {
                Int($0)
            })

        let context = try TestCertificates.clientContext(.pinned(identity.fingerprint), protocols: ["pinhole/1"])
        let group = MultiThreadedEventLoopGroup.singleton
        let done = group.next().makePromise(of: (String, String?).self)
        _ = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: context, serverName: "127.0.0.1"),
                        Collector(send: "hello pinhole\n", until: "elohnip olleh", done: done),
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let (reply, negotiated) = try await done.futureResult.get()
        #expect(reply.contains("elohnip olleh"))
        #expect(negotiated == "pinhole/1")
        let log = await server.waitForExit().output
        #expect(log.contains("ALPN protocols selected: pinhole/1"))
    }

    @Test("`openssl s_client` against our server: verified, ALPN agreed, data echoed")
    func sClientAgainstServer() async throws {
        let authority = try TestCertificates.authority()
        let leaf = try TestCertificates.leaf(dnsNames: ["relay.pinhole.test"], signedBy: authority)
        let bundle = try TestCertificates.writeBundle(authority)
        let listener = try await lineEchoServer(try TestCertificates.serverContext(leaf, protocols: ["pinhole/1"]))
        defer { listener.close(promise: nil) }

        let client = try ChildProcess(
            "openssl",
            [
                "s_client", "-connect", "127.0.0.1:\(listener.localAddress!.port!)", "-servername",
                "relay.pinhole.test",
                "-verify_hostname", "relay.pinhole.test", "-CAfile", bundle, "-verify_return_error",
                "-alpn", "pinhole/1", "-ign_eof",
            ])
        defer { client.terminate() }
        try await client.waitForOutput { $0.contains("Verify return code") }
        client.send("ping from s_client\n")
        let (status, output) = await client.waitForExit()
        #expect(status == 0, "\(output)")
        #expect(output.contains("ALPN protocol: pinhole/1"))
        #expect(output.contains("Verify return code: 0 (ok)"))
        #expect(output.contains("echo: ping from s_client"))
    }

    @Test("TLS 1.2 offers only ECDHE with AEAD: static RSA and CBC with SHA-1 are refused")
    func tls12Suites() async throws {
        let identity = try CertificateGenerator.selfSigned(CertificateRequest(commonName: "relay"))
        let listener = try await lineEchoServer(
            try TestCertificates.serverContext(identity, protocols: ["pinhole/1"]))
        defer { listener.close(promise: nil) }
        let address = "127.0.0.1:\(listener.localAddress!.port!)"
        for weak in ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA"] {
            let client = try ChildProcess(
                "openssl", ["s_client", "-connect", address, "-tls1_2", "-cipher", weak, "-alpn", "pinhole/1"])
            let (status, output) = await client.waitForExit()
            #expect(status != 0 && output.contains("alert handshake failure"), "\(weak) was accepted: \(output)")
        }
        let strong = try ChildProcess(
            "openssl", ["s_client", "-connect", address, "-tls1_2", "-cipher", "ECDHE+AESGCM", "-alpn", "pinhole/1"])
        defer { strong.terminate() }
        let output = try await strong.waitForOutput { $0.contains("Verify return code") }
        #expect(output.contains("Cipher is ECDHE-"), "\(output)")
    }
}
