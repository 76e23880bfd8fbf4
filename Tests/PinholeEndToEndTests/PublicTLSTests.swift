import Foundation
import PinholeTLS
import PinholeTestSupport
import Testing

/// `relay --public-tls`: the public port speaks TLS, and ALPN picks HTTP/2 or HTTP/1.1.
@Suite("Public TLS with ALPN h2 and http/1.1", .timeLimit(.minutes(3)))
struct PublicTLSTests {
    @Test("grpcio over TLS, nghttp choosing h2 by ALPN, curl choosing http/1.1: all reach the app")
    func alpn() async throws {
        let app = try await GRPCApp.start()
        let pinhole = try await GRPCPath.relayAndAgent(appPort: app.port, relayArguments: ["--public-tls"])
        defer {
            pinhole.stop()
            app.stop()
        }
        let (status, output) = try await pinhole.run(["unary", "bidi", "error"])
        #expect(status == 0, "\(output)")

        let authority = try #require(pinhole.authority)
        let nghttp = try ChildProcess(
            "nghttp",
            [
                "-v", "-H", ":authority: \(authority)", "-H", "content-type: application/grpc", "-H", "te: trailers",
                "-d", "/dev/null",
                "https://\(pinhole.address)/pinhole.test.Echo/Unary",
            ])
        let (_, nghttpOutput) = await nghttp.waitForExit()
        #expect(nghttpOutput.contains("The negotiated protocol: h2"), "\(nghttpOutput)")
        #expect(nghttpOutput.contains("recv (stream_id=13) grpc-status: "), "\(nghttpOutput)")

        let host = authority.split(separator: ":").first.map(String.init) ?? authority
        let port = authority.split(separator: ":").last.map(String.init) ?? ""
        let certificate = try #require(pinhole.certificate)
        let https = try await curl([
            "-sS", "--http1.1", "--cacert", certificate, "--resolve", "\(host):\(port):127.0.0.1", "-o", "/dev/null",
            "-w", "%{http_version} %{http_code}", "-H", "content-type: application/grpc", "-d", "",
            "https://\(authority)/pinhole.test.Echo/Unary",
        ])
        // Over HTTP/1.1 a gRPC request is refused as needing HTTP/2: the TLS and the
        // routing worked, and the answer says what to change.
        #expect(https.output == "1.1 505", "\(https.output)")
    }

    @Test("the embedded relay with --public-cert/--public-key: grpcio over TLS, nghttp negotiates h2")
    func embedded() async throws {
        let directory = try makeTemporaryDirectory("public-tls")
        let identity = try CertificateGenerator.selfSigned(
            CertificateRequest(commonName: "localhost", ipAddresses: ["127.0.0.1"]))
        try identity.write(certificatePath: directory + "/cert.pem", keyPath: directory + "/key.pem")
        let app = try await GRPCApp.start()
        var pinhole = try await GRPCPath.embedded(
            target: "h2c://127.0.0.1:\(app.port)",
            arguments: ["--public-cert", directory + "/cert.pem", "--public-key", directory + "/key.pem"])
        pinhole.certificate = directory + "/cert.pem"
        defer {
            pinhole.stop()
            app.stop()
        }
        let (status, output) = try await pinhole.run(["unary", "server_stream", "error"])
        #expect(status == 0, "\(output)")
        let nghttp = try ChildProcess("nghttp", ["-v", "https://\(pinhole.address)/"])
        let (_, nghttpOutput) = await nghttp.waitForExit()
        #expect(nghttpOutput.contains("The negotiated protocol: h2"), "\(nghttpOutput)")
    }
}
