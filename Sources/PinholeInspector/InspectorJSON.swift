import Foundation
import NIOCore
import NIOHTTP1
import PinholeCore

/// The API's JSON. Fields the agent's `--log-format json` also writes have its names,
/// types and values (`method`, `path`, `status`, `duration_ms`, `bytes_in`, `bytes_out`,
/// `time`, `protocol`, `grpc_method`, `grpc_status`, `error`), plus an `id`.
enum InspectorJSON {
    struct Summary: Encodable {
        var id: Int
        var time: String
        var method: String
        var path: String
        var authority: String
        var status: Int?
        var state: String
        var durationMs: Double?
        /// Time so far for a request still in flight, for the page's running clock.
        var elapsedMs: Double
        var bytesIn: Int
        var bytesOut: Int
        /// What the client spoke to the public side: `HTTP/1.1` or `HTTP/2`.
        var `protocol`: String
        var grpcMethod: String?
        /// The protocol a switching request asked for (`websocket`).
        var upgrade: String?
        var replayOf: Int?
        var error: String?
        var client: String?
        var deadlineMs: Double?
        var deadlineSource: String?
        var deadlinePassed: Bool
        var grpcStatus: Int?
    }

    struct Header: Encodable {
        var name: String
        var value: String
    }

    struct Body: Encodable {
        var size: Int
        var kept: Int
        var truncated: Bool
        var contentType: String?
        var base64: String
    }

    struct Message: Encodable {
        var headers: [Header]
        var trailers: [Header]?
        var body: Body
    }

    struct Timing: Encodable {
        var queuedMs: Double?
        var atAppMs: Double?
        var streamingMs: Double?
    }

    struct Detail: Encodable {
        var summary: Summary
        var request: Message
        var response: Message?
        var timing: Timing
        /// The `X-Forwarded-*` fields (the client's address is the summary's `client`).
        var forwarded: [Header]
        /// `grpc-message`, percent-decoded.
        var grpcMessage: String?
        var curl: String
        var replays: [Int]

        enum CodingKeys: String, CodingKey {
            case request, response, timing, forwarded, grpcMessage = "grpc_message", curl, replays
        }

        func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(request, forKey: .request)
            try container.encodeIfPresent(response, forKey: .response)
            try container.encode(timing, forKey: .timing)
            try container.encode(forwarded, forKey: .forwarded)
            try container.encodeIfPresent(grpcMessage, forKey: .grpcMessage)
            try container.encode(curl, forKey: .curl)
            try container.encode(replays, forKey: .replays)
        }
    }

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    static func milliseconds(_ amount: TimeAmount?) -> Double? {
        amount.map { (Double($0.nanoseconds) / 1e5).rounded() / 10 }
    }

    static func summary(_ record: CapturedRequest, now: NIODeadline = .now()) -> Summary {
        Summary(
            id: record.id, time: RFC3339.format(record.wallClock), method: record.method, path: record.path,
            authority: record.authority, status: record.status, state: record.state.rawValue,
            durationMs: milliseconds(record.timing.duration),
            elapsedMs: milliseconds((record.timing.finished ?? now) - record.timing.started) ?? 0,
            bytesIn: record.requestBody.totalBytes, bytesOut: record.responseBody.totalBytes,
            protocol: record.clientProtocol.rawValue, grpcMethod: record.grpcMethod, upgrade: record.upgrade,
            replayOf: record.replayOf, error: record.error, client: record.clientAddress,
            deadlineMs: milliseconds(record.deadline?.timeout), deadlineSource: record.deadline?.source,
            deadlinePassed: record.deadlinePassed, grpcStatus: grpcField("grpc-status", of: record).flatMap { Int($0) })
    }

    /// A gRPC status field: in the trailers, or in the head of a trailers-only response.
    static func grpcField(_ name: String, of record: CapturedRequest) -> String? {
        record.responseTrailers?.first(name: name) ?? record.responseHeaders?.first(name: name)
    }

    static func detail(_ record: CapturedRequest, replays: [Int]) -> Detail {
        let response = record.responseHeaders.map {
            Message(
                headers: headers($0), trailers: record.responseTrailers.map(headers),
                body: body(record.responseBody, type: $0.first(name: "content-type")))
        }
        return Detail(
            summary: summary(record),
            request: Message(
                headers: headers(record.requestHeaders), trailers: record.requestTrailers.map(headers),
                body: body(record.requestBody, type: record.requestHeaders.first(name: "content-type"))),
            response: response,
            timing: Timing(
                queuedMs: milliseconds(record.timing.queued), atAppMs: milliseconds(record.timing.atApp),
                streamingMs: milliseconds(record.timing.streaming)),
            forwarded: headers(record.requestHeaders).filter { $0.name.lowercased().hasPrefix("x-forwarded-") },
            grpcMessage: grpcField("grpc-message", of: record).map(percentDecoded),
            curl: Curl.command(for: record), replays: replays)
    }

    /// gRPC's percent-encoding of `grpc-message` (%XX, UTF-8), decoded; a malformed escape
    /// stays as it was sent, as the gRPC spec asks.
    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == UInt8(ascii: "%"), let high = hexValue(input.first), let low = hexValue(input.dropFirst().first)
            {
                bytes.append(high << 4 | low)
                input = input.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8?) -> UInt8? {
        switch byte {
        case .some(let digit) where (0x30...0x39).contains(digit): return digit - 0x30
        case .some(let letter) where (0x61...0x66).contains(letter | 0x20): return (letter | 0x20) - 0x61 + 10
        default: return nil
        }
    }

    static func headers(_ headers: HTTPHeaders) -> [Header] {
        headers.map { Header(name: $0.name, value: $0.value) }
    }

    static func body(_ body: CapturedBody, type: String?) -> Body {
        Body(
            size: body.totalBytes, kept: body.kept.readableBytes, truncated: body.isTruncated, contentType: type,
            base64: Data(body.kept.readableBytesView).base64EncodedString())
    }
}

extension InspectorJSON.Summary {
    /// The same object as the Encodable form, written by hand as bytes: the live feed
    /// sends one per changed request, many times a second on a busy agent, and with the
    /// page open, writing them was a fifth of the agent's CPU (JSONEncoder's snake-case
    /// keys before that; then strings concatenated key by key, and `String(format:)`
    /// for the time).
    func appendJSON(to bytes: inout [UInt8]) {
        // `authority` is never nil: the first field, the one without a comma before it.
        bytes.append(ascii: "{\"authority\":")
        bytes.append(jsonString: authority)
        bytes.appendJSONField("bytes_in", integer: bytesIn)
        bytes.appendJSONField("bytes_out", integer: bytesOut)
        bytes.appendJSONField("client", string: client)
        bytes.appendJSONField("deadline_ms", milliseconds: deadlineMs)
        bytes.appendJSONField("deadline_passed", literal: deadlinePassed ? "true" : "false")
        bytes.appendJSONField("deadline_source", string: deadlineSource)
        bytes.appendJSONField("duration_ms", milliseconds: durationMs)
        bytes.appendJSONField("elapsed_ms", milliseconds: elapsedMs)
        bytes.appendJSONField("error", string: error)
        bytes.appendJSONField("grpc_method", string: grpcMethod)
        bytes.appendJSONField("grpc_status", integer: grpcStatus)
        bytes.appendJSONField("id", integer: id)
        bytes.appendJSONField("method", string: method)
        bytes.appendJSONField("path", string: path)
        bytes.appendJSONField("protocol", string: `protocol`)
        bytes.appendJSONField("replay_of", integer: replayOf)
        bytes.appendJSONField("state", string: state)
        bytes.appendJSONField("status", integer: status)
        bytes.appendJSONField("time", string: time)
        bytes.appendJSONField("upgrade", string: upgrade)
        bytes.append(UInt8(ascii: "}"))
    }

    /// `appendJSON` as a string (for tests, which compare it with the Encodable form).
    var json: String {
        var bytes: [UInt8] = []
        appendJSON(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A flat JSON object's fields after its first, each appended as `,"key":value`; nil
/// values are left out, as JSONEncoder does.
extension Array where Element == UInt8 {
    mutating func appendJSONField(_ key: StaticString, string value: String?) {
        guard let value else { return }
        appendJSONKey(key)
        append(jsonString: value)
    }

    mutating func appendJSONField(_ key: StaticString, integer value: Int?) {
        guard let value else { return }
        appendJSONKey(key)
        append(decimal: value)
    }

    /// Milliseconds as `InspectorJSON.milliseconds` rounds them, to a tenth: `12` or `12.3`.
    mutating func appendJSONField(_ key: StaticString, milliseconds value: Double?) {
        guard let value else { return }
        appendJSONKey(key)
        let tenths = Int((value * 10).rounded())
        if tenths % 10 == 0 { append(decimal: tenths / 10) } else { append(tenths: tenths) }
    }

    mutating func appendJSONField(_ key: StaticString, literal: StaticString) {
        appendJSONKey(key)
        append(ascii: literal)
    }

    private mutating func appendJSONKey(_ key: StaticString) {
        append(ascii: ",\"")
        append(ascii: key)
        append(ascii: "\":")
    }
}
