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
        var object = JSONObjectWriter(appendingTo: &bytes)
        object.add("authority", string: authority)
        object.add("bytes_in", integer: bytesIn)
        object.add("bytes_out", integer: bytesOut)
        object.add("client", string: client)
        object.add("deadline_ms", milliseconds: deadlineMs)
        object.add("deadline_passed", literal: deadlinePassed ? "true" : "false")
        object.add("deadline_source", string: deadlineSource)
        object.add("duration_ms", milliseconds: durationMs)
        object.add("elapsed_ms", milliseconds: elapsedMs)
        object.add("error", string: error)
        object.add("grpc_method", string: grpcMethod)
        object.add("grpc_status", integer: grpcStatus)
        object.add("id", integer: id)
        object.add("method", string: method)
        object.add("path", string: path)
        object.add("protocol", string: `protocol`)
        object.add("replay_of", integer: replayOf)
        object.add("state", string: state)
        object.add("status", integer: status)
        object.add("time", string: time)
        object.add("upgrade", string: upgrade)
        bytes = object.finish()
    }

    /// `appendJSON` as a string.
    var json: String {
        var bytes: [UInt8] = []
        appendJSON(to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A flat JSON object, key by key, appended to bytes; nil values are left out, as
/// JSONEncoder does.
struct JSONObjectWriter {
    private var bytes: [UInt8]
    private var empty = true

    /// Takes `bytes` over (they are empty until `finish` gives them back): the object is
    /// appended to the caller's storage, not to a copy.
    init(appendingTo bytes: inout [UInt8]) {
        self.bytes = []
        swap(&self.bytes, &bytes)
        self.bytes.append(UInt8(ascii: "{"))
    }

    mutating func add(_ key: StaticString, string value: String?) {
        guard let value else { return }
        self.key(key)
        bytes.append(jsonString: value)
    }

    mutating func add(_ key: StaticString, integer value: Int?) {
        guard let value else { return }
        self.key(key)
        bytes.append(decimal: value)
    }

    /// Milliseconds as `InspectorJSON.milliseconds` rounds them, to a tenth: `12` or `12.3`.
    mutating func add(_ key: StaticString, milliseconds value: Double?) {
        guard let value else { return }
        self.key(key)
        let tenths = Int((value * 10).rounded())
        if tenths % 10 == 0 { bytes.append(decimal: tenths / 10) } else { bytes.append(tenths: tenths) }
    }

    mutating func add(_ key: StaticString, literal: StaticString) {
        self.key(key)
        bytes.append(ascii: literal)
    }

    private mutating func key(_ key: StaticString) {
        if !empty { bytes.append(UInt8(ascii: ",")) }
        empty = false
        bytes.append(UInt8(ascii: "\""))
        bytes.append(ascii: key)
        bytes.append(ascii: "\":")
    }

    consuming func finish() -> [UInt8] {
        bytes.append(UInt8(ascii: "}"))
        return bytes
    }
}
