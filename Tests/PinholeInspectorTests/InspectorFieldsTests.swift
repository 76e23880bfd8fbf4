import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import PinholeCore
import Testing

@testable import PinholeInspector

/// What the API says of a request, without sockets: the fields shared with the log,
/// gRPC's percent-encoded messages, curl lines and replays that keep the protocol.
@Suite("Inspector fields")
struct InspectorFieldsTests {
    static func captured(
        _ head: ProxyRequestHead, trailers: HTTPHeaders? = nil
    ) throws -> CapturedRequest {
        let inspector = Inspector()
        let scripted = InspectorStoreTests.ScriptedTarget()
        let upstream = try inspector.capture(scripted).startExchange(
            head, downstream: InspectorStoreTests.SinkDownstream(), on: EmbeddedEventLoop())
        upstream.sendEnd(trailers: nil)
        scripted.upstreams[0].answer(ByteBuffer(string: "ok"), trailers: trailers)
        return try #require(inspector.store.all().first)
    }

    static let grpcHead = ProxyRequestHead(
        method: .POST, path: "/pkg.Cart/Check", authority: "app", scheme: "http",
        headers: ["content-type": "application/grpc"], clientProtocol: .http2)

    @Test("protocol, grpc_method and grpc_status have the log's names, types and values, in both writers")
    func logFields() throws {
        let record = try Self.captured(Self.grpcHead, trailers: ["grpc-status": "9", "grpc-message": "a%20b"])
        let summary = InspectorJSON.summary(record)
        let written = try object(summary.json)
        #expect(written["protocol"] as? String == "HTTP/2")
        #expect(written["grpc_method"] as? String == "/pkg.Cart/Check")
        #expect(written["grpc_status"] as? Int == 9)
        let encoded = try JSONSerialization.jsonObject(with: InspectorJSON.encoder().encode(summary)) as? NSDictionary
        #expect(NSDictionary(dictionary: written) == encoded)

        let plain = try Self.captured(
            ProxyRequestHead(method: .GET, path: "/", authority: "app", scheme: "http", headers: [:]))
        let plainSummary = try object(InspectorJSON.summary(plain).json)
        #expect(plainSummary["protocol"] as? String == "HTTP/1.1")
        #expect(plainSummary["grpc_method"] == nil && plainSummary["grpc_status"] == nil)
    }

    @Test(
        "the client is the last address of X-Forwarded-For, spaces and tabs trimmed",
        arguments: [
            ("192.0.2.7", "192.0.2.7"), ("10.0.0.1, 192.0.2.7", "192.0.2.7"),
            ("10.0.0.1,\t 2001:db8::1 \t", "2001:db8::1"),
            ("10.0.0.1, ", nil), ("", nil), ("10.0.0.1,", nil),
        ] as [(String, String?)])
    func clientAddress(list: String, client: String?) {
        let head = ProxyRequestHead(
            method: .GET, path: "/", authority: "app", scheme: "http", headers: ["X-Forwarded-For": list])
        let record = CapturedRequest(
            id: 1, head: head, replayOf: nil, wallClock: 0, started: .now(), deadline: nil)
        #expect(record.clientAddress == client)
        let bare = ProxyRequestHead(method: .GET, path: "/", authority: "app", scheme: "http", headers: [:])
        #expect(
            CapturedRequest(id: 2, head: bare, replayOf: nil, wallClock: 0, started: .now(), deadline: nil)
                .clientAddress == nil)
    }

    @Test("the hand-written summary equals the encoded one with every field set, and with every optional left out")
    func summaryWriters() throws {
        let full = InspectorJSON.Summary(
            id: 7, time: "2026-12-07T03:08:37.123Z", method: "POST", path: "/a\"b\\c\n\u{1}é", authority: "app:80",
            status: 413, state: "complete", durationMs: 12.3, elapsedMs: -0.5, bytesIn: 1 << 40, bytesOut: 0,
            protocol: "HTTP/2", grpcMethod: "/pkg.S/M", upgrade: "websocket", replayOf: 3, error: "cut \"short\"",
            client: "2001:db8::1", deadlineMs: 9_223_372_036_854.8, deadlineSource: "grpc-timeout",
            deadlinePassed: true, grpcStatus: 14)
        var bare = full
        (bare.status, bare.durationMs, bare.grpcMethod, bare.upgrade, bare.replayOf) = (nil, nil, nil, nil, nil)
        (bare.error, bare.client, bare.deadlineMs, bare.deadlineSource, bare.grpcStatus) = (nil, nil, nil, nil, nil)
        (bare.elapsedMs, bare.deadlinePassed) = (12, false)
        for summary in [full, bare] {
            let encoded =
                try JSONSerialization.jsonObject(with: InspectorJSON.encoder().encode(summary)) as? NSDictionary
            let written = NSDictionary(dictionary: try object(summary.json))
            #expect(written == encoded, "\(summary.json)")
        }
        #expect(full.json.contains(#""duration_ms":12.3,"#) && full.json.contains(#""elapsed_ms":-0.5,"#))
        #expect(bare.json.contains(#""elapsed_ms":12,"#) && !bare.json.contains("status"))
    }

    @Test("grpc-message is percent-decoded; malformed escapes stay as sent")
    func grpcMessage() {
        #expect(InspectorJSON.percentDecoded("100%25 sure, %C3%BCn%C3%AFcode") == "100% sure, ünïcode")
        #expect(InspectorJSON.percentDecoded("%zz %+1 %4") == "%zz %+1 %4")
        #expect(InspectorJSON.percentDecoded("%41%62") == "Ab")
    }

    @Test("curl speaks HTTP/2 for a call that came over HTTP/2, and HEAD is --head")
    func curlFlags() throws {
        let grpc = Curl.command(for: try Self.captured(Self.grpcHead))
        #expect(grpc.hasPrefix("curl --http2-prior-knowledge -X POST "), "\(grpc)")
        let head = Curl.command(
            for: try Self.captured(
                ProxyRequestHead(method: .HEAD, path: "/", authority: "app", scheme: "http", headers: [:])))
        #expect(head.hasPrefix("curl --head 'http://app/'") && !head.contains("-X"), "\(head)")
    }

    @Test("a replay keeps the protocol its original came with")
    func replayProtocol() throws {
        let head = try Inspector.head(
            replaying: try Self.captured(Self.grpcHead), changes: ReplayChanges(), bodyBytes: 0)
        #expect(head.clientProtocol == .http2 && head.isGRPC)
    }
}
