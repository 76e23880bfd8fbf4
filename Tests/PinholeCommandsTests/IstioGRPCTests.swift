import ArgumentParser
import PinholeCommands
import PinholeCore
import PinholeIstio
import Testing
import Yams

@Suite("agent istio for gRPC and HTTP/2 services")
struct IstioGRPCTests {
    private func render(_ arguments: [String]) throws -> [[String: Any]] {
        let parsed = try IstioCommand.parseAsRoot(arguments + ["--authority", "relay.example.com:8080"])
        let command = try #require(parsed as? IstioCommand)
        var documents: [[String: Any]] = []
        var sequence = try Yams.load_all(yaml: try command.render())
        while let document = sequence.next() { documents.append(try #require(document as? [String: Any])) }
        return documents
    }

    private func entryPort(_ documents: [[String: Any]]) -> [String: Any]? {
        let entry = documents.first { $0["kind"] as? String == "ServiceEntry" }
        return ((entry?["spec"] as? [String: Any])?["ports"] as? [[String: Any]])?.first
    }

    @Test("--service-protocol grpc: route by default, the tunnel's port is GRPC")
    func grpcRoutes() throws {
        let documents = try render(["--service", "checkout", "--service-protocol", "grpc"])
        #expect(documents.map { $0["kind"] as? String } == ["ServiceEntry", "VirtualService"])
        let port = try #require(entryPort(documents))
        #expect(port["protocol"] as? String == "GRPC" && port["name"] as? String == "grpc")
    }

    @Test("--app-protocol h2c: route by default, the tunnel's port is HTTP2")
    func h2cRoutes() throws {
        let documents = try render(["--service", "checkout", "--app-protocol", "h2c"])
        let port = try #require(entryPort(documents))
        #expect(port["protocol"] as? String == "HTTP2" && port["name"] as? String == "http2")
    }

    @Test("mirror works for gRPC: the mirror goes to a GRPC port")
    func grpcMirror() throws {
        let documents = try render(["--service", "checkout", "--service-protocol", "grpc", "--istio", "mirror"])
        #expect(entryPort(documents)?["protocol"] as? String == "GRPC")
        #expect(documents.last?["kind"] as? String == "VirtualService")
    }

    @Test("over https the port keeps its protocol and a DestinationRule originates TLS")
    func grpcOverTLS() throws {
        let documents = try render(["--service", "checkout", "--service-protocol", "grpc", "--scheme", "https"])
        #expect(documents.map { $0["kind"] as? String } == ["ServiceEntry", "DestinationRule", "VirtualService"])
        #expect(entryPort(documents)?["name"] as? String == "grpc-tls")
    }

    @Test("redirect with --service-protocol grpc is refused, saying why")
    func grpcRedirectRefused() throws {
        do {
            _ = try IstioOptions.parse(["--service", "c", "--service-protocol", "grpc", "--istio", "redirect"])
            Issue.record("accepted")
        } catch {
            #expect(IstioOptions.message(for: error).contains("gRPC clients do not follow redirects"))
        }
    }

    @Test("redirect for an h2c app is allowed, with a warning; plain HTTP stays redirect by default")
    func h2cRedirectWarns() throws {
        let options = try IstioOptions.parse(["--service", "c", "--app-protocol", "h2c", "--istio", "redirect"])
        #expect(options.warnings.count == 1)
        let plain = try IstioOptions.parse(["--service", "c"])
        #expect(plain.resolvedMode == .redirect && plain.warnings.isEmpty)
    }
}
