import NIOCore
import NIOHTTP1
import PinholeCore
import PinholeHTTP2
import Testing

@testable import PinholeTunnel

@Suite("HTTP/2 on the public side: the preface sniffer, gRPC errors, tunnel fields")
struct GRPCAndPrefaceTests {
    @Test("the preface is HTTP/2, any other first byte HTTP/1.1, a prefix of it needs more")
    func sniffer() {
        let preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: preface)) == .http2)
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: preface + "\0\0\u{12}\u{4}")) == .http2)
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: "PRI * HTTP/2")) == .needMoreBytes)
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: "")) == .needMoreBytes)
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: "G")) == .http1)
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: "PRI * HTTP/1.1\r\n")) == .http1)
        #expect(PrefaceSniffer.verdict(ByteBuffer(string: "POST / HTTP/1.1\r\n")) == .http1)
    }

    @Test("a public connection's first bytes are held until they decide, handed over whole, and then passed on")
    func protocolHandOver() {
        var http2 = PublicProtocolStateMachine()
        // The preface split across three reads, the last with the start of a frame.
        #expect(http2.received(ByteBuffer(string: "PRI * HT")) == .wait)
        #expect(http2.received(ByteBuffer(string: "TP/2.0\r\n\r\nSM")) == .wait)
        let whole = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0"
        #expect(
            http2.received(ByteBuffer(string: "\r\n\r\n\0\0")) == .handOver(.http2, held: ByteBuffer(string: whole)))
        #expect(http2.state == .handedOver)
        #expect(http2.received(ByteBuffer(string: "more")) == .passOn(ByteBuffer(string: "more")))

        var http1 = PublicProtocolStateMachine()
        // "PRI" alone could be either; the next byte settles it, and nothing is lost.
        #expect(http1.received(ByteBuffer(string: "PRI")) == .wait)
        #expect(
            http1.received(ByteBuffer(string: " /x HTTP/1.1\r\n"))
                == .handOver(.http1, held: ByteBuffer(string: "PRI /x HTTP/1.1\r\n")))
        var get = PublicProtocolStateMachine()
        #expect(
            get.received(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
                == .handOver(.http1, held: ByteBuffer(string: "GET / HTTP/1.1\r\n")))
    }

    @Test("grpc-message is percent-encoded: printable ASCII stays, % and UTF-8 bytes are escaped")
    func percentEncoding() {
        #expect(GRPCMessage.percentEncoded("plain words") == "plain words")
        #expect(GRPCMessage.percentEncoded("100%") == "100%25")
        #expect(GRPCMessage.percentEncoded("ü\n") == "%C3%BC%0A")
    }

    @Test("a failure is a Trailers-Only gRPC response: 200, grpc-status 14, the 502's words")
    func trailersOnly() {
        let error = ExchangeError.targetUnreachable(target: "h2c://localhost:50051", reason: "connection refused")
        let fields = error.grpcTrailersOnly
        #expect(fields[":status"] == "200")
        #expect(fields["content-type"] == "application/grpc")
        #expect(fields["grpc-status"] == "14")
        #expect(
            fields["grpc-message"] == "pinhole: the agent could not reach h2c://localhost:50051: connection refused")
        #expect(ExchangeError.agentNotConnected(host: "x").grpcStatus == GRPCStatus.unavailable)
        #expect(ExchangeError.noRoute(host: "x").grpcStatus == GRPCStatus.unimplemented)
        #expect(ExchangeError.timedOut(seconds: 5).grpcStatus == GRPCStatus.deadlineExceeded)
    }

    @Test("the client's protocol crosses the tunnel and never reaches an HTTP/2 app")
    func clientProtocolField() throws {
        var head = ProxyRequestHead(
            method: .POST, path: "/pkg.S/M", authority: "demo", scheme: "http",
            headers: ["content-type": "application/grpc", "te": "trailers"])
        head.clientProtocol = .http2
        #expect(head.isGRPC)
        #expect(head.http2Headers[TunnelFields.clientProtocol] == "HTTP/2")
        #expect(head.appHTTP2Headers[TunnelFields.clientProtocol] == nil)
        #expect(head.appHTTP2Headers["te"] == "trailers")
        let received = try ProxyRequestHead(http2: head.http2Headers)
        #expect(received.clientProtocol == .http2)
        #expect(received.headers[TunnelFields.clientProtocol].isEmpty)
        let record = ExchangeRecord(request: received, status: 200, startedAt: .now(), grpcStatus: 0)
        #expect(record.protocol == "HTTP/2" && record.grpcMethod == "/pkg.S/M" && record.grpcStatus == 0)
    }

    @Test("gRPC-Web is an ordinary request; application/grpc+proto is gRPC")
    func grpcContentTypes() {
        func head(_ type: String) -> ProxyRequestHead {
            ProxyRequestHead(method: .POST, path: "/", authority: "a", scheme: "http", headers: ["content-type": type])
        }
        #expect(head("application/grpc+proto").isGRPC)
        #expect(head("Application/GRPC").isGRPC)
        #expect(!head("application/grpc-web+proto").isGRPC)
        #expect(!head("application/json").isGRPC)
    }
}

@Suite("Idle public HTTP/2 connections")
struct PublicHTTP2IdleCheckTests {
    @Test("closed only after a whole interval with no stream open and none opened")
    func idle() {
        var check = PublicHTTP2IdleCheck()
        check.streamOpened()
        let afterAStream = check.intervalEnded(activeStreams: 0)
        let withAStreamOpen = check.intervalEnded(activeStreams: 1)
        let quiet = check.intervalEnded(activeStreams: 0)
        #expect(!afterAStream, "a stream came and went in the interval")
        #expect(!withAStreamOpen, "a stream is open (a request at a breakpoint)")
        #expect(quiet)
    }
}

@Suite("HTTP/2 request fields for HTTP/1.1")
struct HTTP2CookieTests {
    @Test("split cookie fields are joined into one, in order")
    func cookies() throws {
        let head = try ProxyRequestHead(http2: [
            (":method", "GET"), (":scheme", "http"), (":authority", "a"), (":path", "/"), ("cookie", "a=1"),
            ("accept", "*/*"), ("cookie", "b=2"),
        ])
        #expect(head.headers["cookie"] == ["a=1; b=2"])
        #expect(head.headers["accept"] == ["*/*"])
    }
}
