import Foundation
import NIOHTTP1
import PinholeCore

/// Captured requests as an HTTP Archive, version 1.2 (http://www.softwareishard.com/blog/har-12-spec/).
/// Bodies that are not UTF-8 text go in base64 (`content.encoding`), as the spec allows.
enum HAR {
    struct Document: Encodable {
        var log: Log
    }

    struct Log: Encodable {
        var version = "1.2"
        var creator = Creator()
        var pages: [String] = []
        var entries: [Entry]
    }

    struct Creator: Encodable {
        var name = "pinhole"
        var version = "1"
    }

    /// HAR's name/value pairs (headers, cookies, query, form fields): the API's header shape.
    typealias NameValue = InspectorJSON.Header

    struct Entry: Encodable {
        var startedDateTime: String
        var time: Double
        var request: Request
        var response: Response
        var cache = Cache()
        var timings: Timings
        var comment: String?
    }

    struct Request: Encodable {
        var method: String
        var url: String
        /// What the client spoke: `HTTP/1.1` or `HTTP/2`.
        var httpVersion: String
        var cookies: [NameValue]
        var headers: [NameValue]
        var queryString: [NameValue]
        var postData: PostData?
        var headersSize = -1
        var bodySize: Int
    }

    struct PostData: Encodable {
        var mimeType: String
        var params: [NameValue] = []
        var text: String
        var comment: String?
    }

    struct Response: Encodable {
        var status: Int
        var statusText: String
        var httpVersion: String
        var cookies: [NameValue]
        var headers: [NameValue]
        var content: Content
        var redirectURL: String
        var headersSize = -1
        var bodySize: Int
        var comment: String?
    }

    struct Content: Encodable {
        var size: Int
        var mimeType: String
        var text: String?
        var encoding: String?
        var comment: String?
    }

    struct Cache: Encodable {}

    struct Timings: Encodable {
        var blocked: Double
        var dns = -1.0
        var connect = -1.0
        var send: Double
        var wait: Double
        var receive: Double
        var ssl = -1.0
    }

    static func document(_ records: [CapturedRequest]) -> Document {
        Document(log: Log(entries: records.map(entry)))
    }

    static func entry(_ record: CapturedRequest) -> Entry {
        let queued = InspectorJSON.milliseconds(record.timing.queued) ?? 0
        let wait = InspectorJSON.milliseconds(record.timing.atApp) ?? 0
        let receive = InspectorJSON.milliseconds(record.timing.streaming) ?? 0
        let requestType = record.requestHeaders.first(name: "content-type") ?? ""
        let post: PostData? =
            record.requestBody.totalBytes == 0
            ? nil
            : PostData(
                mimeType: requestType, params: formParams(record.requestBody, type: requestType),
                text: String(decoding: record.requestBody.kept.readableBytesView, as: UTF8.self),
                comment: record.requestBody.isTruncated ? truncation(record.requestBody) : nil)
        let responseHeaders = record.responseHeaders ?? HTTPHeaders()
        let status = record.status ?? 0
        var comments: [String] = []
        if let replayOf = record.replayOf { comments.append("replay of #\(replayOf)") }
        if let error = record.error { comments.append(error) }
        if record.state == .pending || record.state == .responding { comments.append("still in flight") }
        return Entry(
            startedDateTime: RFC3339.format(record.wallClock),
            time: queued + wait + receive,
            request: Request(
                method: record.method, url: "\(record.scheme)://\(record.authority)\(record.path)",
                httpVersion: record.clientProtocol.rawValue,
                cookies: cookies(record.requestHeaders[canonicalForm: "cookie"].flatMap { $0.split(separator: ";") }),
                headers: pairs(record.requestHeaders), queryString: query(record.path), postData: post,
                bodySize: record.requestBody.totalBytes),
            response: Response(
                status: status, statusText: HTTPResponseStatus(statusCode: status).reasonPhrase,
                httpVersion: record.clientProtocol.rawValue,
                cookies: cookies(responseHeaders["set-cookie"].compactMap { $0.split(separator: ";").first }),
                headers: pairs(responseHeaders), content: content(record.responseBody, headers: responseHeaders),
                redirectURL: responseHeaders.first(name: "location") ?? "",
                bodySize: record.responseHeaders == nil ? -1 : record.responseBody.totalBytes,
                comment: record.responseBody.isTruncated ? truncation(record.responseBody) : nil),
            timings: Timings(blocked: queued, send: 0, wait: wait, receive: receive),
            comment: comments.isEmpty ? nil : comments.joined(separator: "; "))
    }

    private static func content(_ body: CapturedBody, headers: HTTPHeaders) -> Content {
        let type = headers.first(name: "content-type") ?? ""
        let bytes = Array(body.kept.readableBytesView)
        if let text = String(validating: bytes, as: UTF8.self) {
            return Content(size: body.totalBytes, mimeType: type, text: text)
        }
        return Content(
            size: body.totalBytes, mimeType: type, text: Data(bytes).base64EncodedString(), encoding: "base64")
    }

    private static func truncation(_ body: CapturedBody) -> String {
        "only the first \(body.kept.readableBytes) of \(body.totalBytes) bytes were kept"
    }

    private static func pairs(_ headers: HTTPHeaders) -> [NameValue] {
        headers.map { NameValue(name: $0.name, value: $0.value) }
    }

    private static func cookies(_ parts: [Substring]) -> [NameValue] {
        parts.compactMap { part in
            let pair = part.split(separator: "=", maxSplits: 1)
            guard let name = pair.first?.trimmingCharacters(in: .whitespaces), !name.isEmpty else { return nil }
            return NameValue(name: name, value: pair.count > 1 ? String(pair[1]) : "")
        }
    }

    static func query(_ path: String) -> [NameValue] {
        guard let mark = path.firstIndex(of: "?") else { return [] }
        return decodeForm(String(path[path.index(after: mark)...]))
    }

    private static func formParams(_ body: CapturedBody, type: String) -> [NameValue] {
        guard type.lowercased().hasPrefix("application/x-www-form-urlencoded") else { return [] }
        return decodeForm(String(decoding: body.kept.readableBytesView, as: UTF8.self))
    }

    static func decodeForm(_ text: String) -> [NameValue] {
        text.split(separator: "&").map { item in
            let pair = item.split(separator: "=", maxSplits: 1).map {
                $0.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
            }
            return NameValue(name: pair.first ?? "", value: pair.count > 1 ? pair[1] : "")
        }
    }
}
