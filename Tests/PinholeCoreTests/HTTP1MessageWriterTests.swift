import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import PinholeCore

/// The writer's bytes are read back with NIO's HTTP/1 response parser, a peer written
/// elsewhere, so framing mistakes show up as parse errors or wrong bodies.
@Suite("HTTP/1 response writer: framing and gathering")
struct HTTP1MessageWriterTests {
    /// Writes one response and returns the buffers in the order they would be written.
    private func write(
        version: HTTPVersion = .http1_1, status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:],
        hasBody: Bool = true, connection: String? = nil, body: [ByteBuffer], trailers: HTTPHeaders? = nil
    ) -> (writes: [ByteBuffer], framing: HTTP1MessageWriter.Framing) {
        var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
        var writes: [ByteBuffer] = []
        writer.head(status: status, version: version, headers: headers, hasBody: hasBody, connection: connection)
        for piece in body { writer.body(piece) { writes.append($0) } }
        writer.end(trailers: trailers)
        if let last = writer.take() { writes.append(last) }
        return (writes, writer.framing)
    }

    /// Parses `bytes` as the response to a `method` request.
    private func parse(_ writes: [ByteBuffer], method: HTTPMethod = .GET) throws -> [HTTPClientResponsePart] {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder()))
        try channel.writeOutbound(
            HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: "/")))
        for buffer in writes { try channel.writeInbound(buffer) }
        var parts: [HTTPClientResponsePart] = []
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) { parts.append(part) }
        _ = try channel.finish()
        return parts
    }

    private func body(of parts: [HTTPClientResponsePart]) -> [UInt8] {
        parts.flatMap { part -> [UInt8] in
            if case .body(let buffer) = part { return Array(buffer.readableBytesView) }
            return []
        }
    }

    @Test("without Content-Length an HTTP/1.1 body is chunked, trailers included, in one buffer when small")
    func chunkedSmall() throws {
        let (writes, framing) = write(
            headers: ["Content-Type": "text/plain"],
            body: [ByteBuffer(string: "Hello, "), ByteBuffer(string: "world")],
            trailers: ["x-checksum": "abc"])
        #expect(framing == .chunked)
        #expect(writes.count == 1)
        let parts = try parse(writes)
        guard case .head(let head) = parts.first else { Issue.record("no head: \(parts)"); return }
        #expect(head.status == .ok && head.headers["transfer-encoding"] == ["chunked"])
        #expect(head.headers["content-type"] == ["text/plain"])
        #expect(String(decoding: body(of: parts), as: UTF8.self) == "Hello, world")
        guard case .end(let trailers) = parts.last else { Issue.record("no end: \(parts)"); return }
        #expect(trailers?["x-checksum"] == ["abc"])
    }

    @Test("a large piece is passed on as it is, between its chunk framing", arguments: [4097, 65_536, 1_000_003])
    func chunkedLarge(size: Int) throws {
        let piece = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let (writes, _) = write(body: [ByteBuffer(string: "start"), piece, ByteBuffer(string: "tail")])
        #expect(writes.contains { $0 == piece })
        let expected = Array("start".utf8) + Array(piece.readableBytesView) + Array("tail".utf8)
        #expect(body(of: try parse(writes)) == expected)
    }

    @Test("with Content-Length the body goes as it is")
    func identity() throws {
        let (writes, framing) = write(headers: ["Content-Length": "13"], body: [ByteBuffer(string: "Hello, world!")])
        #expect(framing == .identity)
        #expect(writes.count == 1)
        let text = String(buffer: writes[0])
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n") && text.hasSuffix("\r\n\r\nHello, world!"))
        #expect(!text.lowercased().contains("transfer-encoding"))
        #expect(String(decoding: body(of: try parse(writes)), as: UTF8.self) == "Hello, world!")
    }

    @Test("an HTTP/1.0 client gets the body to the end of the connection, never chunks")
    func http10() {
        let (writes, framing) = write(version: .http1_0, connection: "close", body: [ByteBuffer(string: "old")])
        #expect(framing == .identity)
        let text = writes.map { String(buffer: $0) }.joined()
        #expect(text == "HTTP/1.0 200 OK\r\nconnection: close\r\n\r\nold")
    }

    @Test("no body may follow a HEAD answer, a 204 or a 304: pieces are dropped", arguments: [false, true])
    func noBody(isHead: Bool) throws {
        let status: HTTPResponseStatus = isHead ? .ok : .noContent
        let (writes, framing) = write(
            status: status, headers: ["Content-Length": "42"], hasBody: false, body: [ByteBuffer(string: "stray")])
        #expect(framing == .none)
        let text = writes.map { String(buffer: $0) }.joined()
        #expect(!text.contains("stray") && text.hasSuffix("\r\n\r\n"))
        let parts = try parse(writes, method: isHead ? .HEAD : .GET)
        #expect(parts.count == 2 && body(of: parts).isEmpty)
    }

    @Test("status lines carry the code and its reason phrase")
    func statusLine() {
        for (status, line) in [
            (HTTPResponseStatus.notFound, "HTTP/1.1 404 Not Found\r\n"),
            (.badGateway, "HTTP/1.1 502 Bad Gateway\r\n"), (.continue, "HTTP/1.1 100 Continue\r\n"),
        ] {
            var buffer = ByteBuffer()
            buffer.writeStatusLine(version: .http1_1, status: status)
            #expect(String(buffer: buffer) == line)
        }
    }

    @Test(
        "chunk sizes are lowercase hexadecimal",
        arguments: [(1, "1"), (15, "f"), (16, "10"), (4096, "1000"), (1_000_003, "f4243")])
    func chunkSize(size: Int, hex: String) {
        var buffer = ByteBuffer()
        buffer.writeChunkSize(size)
        #expect(String(buffer: buffer) == hex + "\r\n")
    }

    // MARK: Requests to the target

    /// Writes `request` with `body`, and parses it back with NIO's request parser.
    private func roundTrip(
        _ request: ProxyRequestHead, hasBody: Bool, body: [ByteBuffer], trailers: HTTPHeaders? = nil
    ) throws -> (text: String, parts: [HTTPServerRequestPart]) {
        var writer = HTTP1MessageWriter(allocator: ByteBufferAllocator())
        var writes: [ByteBuffer] = []
        writer.head(request: request, hasBody: hasBody)
        for piece in body { writer.body(piece) { writes.append($0) } }
        writer.end(trailers: trailers)
        if let last = writer.take() { writes.append(last) }
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
        for buffer in writes { try channel.writeInbound(buffer) }
        var parts: [HTTPServerRequestPart] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        _ = try channel.finish()
        return (writes.map { String(buffer: $0) }.joined(), parts)
    }

    @Test("a request known to have no body goes without framing, Host first")
    func bodilessRequest() throws {
        let request = ProxyRequestHead(
            method: .GET, path: "/a?b=1", authority: "demo.example:8080", scheme: "http",
            headers: ["Accept": "*/*"])
        let (text, parts) = try roundTrip(request, hasBody: false, body: [])
        #expect(text == "GET /a?b=1 HTTP/1.1\r\nhost: demo.example:8080\r\nAccept: */*\r\n\r\n")
        guard case .head(let head) = parts.first, case .end = parts.last else {
            Issue.record("\(parts)")
            return
        }
        #expect(parts.count == 2 && head.uri == "/a?b=1" && head.headers["host"] == ["demo.example:8080"])
    }

    @Test("a request body is chunked without a length, with its trailers, and goes as it is with one")
    func requestBodies() throws {
        let chunkedRequest = ProxyRequestHead(
            method: .POST, path: "/upload", authority: "demo", scheme: "http", headers: [:])
        let (_, chunked) = try roundTrip(
            chunkedRequest, hasBody: true, body: [ByteBuffer(string: "part one, "), ByteBuffer(string: "part two")],
            trailers: ["x-digest": "d1"])
        let chunkedBody = chunked.compactMap { part -> String? in
            if case .body(let buffer) = part { return String(buffer: buffer) }
            return nil
        }
        #expect(chunkedBody.joined() == "part one, part two")
        guard case .end(let trailers) = chunked.last else {
            Issue.record("\(chunked)")
            return
        }
        #expect(trailers?["x-digest"] == ["d1"])

        let sized = ProxyRequestHead(
            method: .PUT, path: "/item", authority: "demo", scheme: "http", headers: ["content-length": "5"])
        let (text, parts) = try roundTrip(sized, hasBody: true, body: [ByteBuffer(string: "12345")])
        #expect(text.hasSuffix("content-length: 5\r\n\r\n12345") && !text.contains("transfer-encoding"))
        #expect(parts.count == 3)
    }
}
