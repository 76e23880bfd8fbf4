import Foundation
import NIOCore
import NIOHTTP1
import PinholeCore

/// A request to the inspector, read whole (its bodies are small: edits for a replay).
struct APIRequest {
    var method: HTTPMethod
    var path: String
    var query: [String: String]
    var headers: HTTPHeaders
    var body: ByteBuffer

    init(head: HTTPRequestHead, body: ByteBuffer) {
        method = head.method
        let parts = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        path = parts.first.map(String.init) ?? "/"
        query = [:]
        if parts.count > 1 {
            for pair in HAR.decodeForm(String(parts[1])) { query[pair.name] = pair.value }
        }
        headers = head.headers
        self.body = body
    }
}

struct APIResponse {
    var status: HTTPResponseStatus
    var contentType: String
    var body: ByteBuffer
    var headers: [(String, String)] = []

    /// `value` as JSON; `snakeCase` for the API's own objects, not for HAR's camelCase.
    static func json(_ value: some Encodable, status: HTTPResponseStatus = .ok, snakeCase: Bool = true) -> APIResponse {
        let encoder = InspectorJSON.encoder()
        if !snakeCase { encoder.keyEncodingStrategy = .useDefaultKeys }
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return APIResponse(status: status, contentType: "application/json", body: ByteBuffer(bytes: data))
    }

    /// `{"error": "..."}` with `status`.
    static func error(_ status: HTTPResponseStatus, _ message: String) -> APIResponse {
        json(["error": message], status: status)
    }
}

/// The JSON API's routes, apart from the live feed (which keeps its connection).
struct InspectorAPI {
    let inspector: Inspector

    /// What to answer, or a future answer for a replay that waits for its response.
    enum Outcome {
        case now(APIResponse)
        case later(EventLoopFuture<APIResponse>)
    }

    /// The resources, by path.
    enum Route: Equatable {
        case page, list, one(Int), replay(Int), har, unknown

        init(_ path: String) {
            let segments = path.split(separator: "/").map(String.init)
            switch segments.count {
            case 0: self = .page
            case 1: self = segments[0] == "index.html" ? .page : .unknown
            case 2: self = segments == ["api", "requests"] ? .list : segments == ["api", "har"] ? .har : .unknown
            case 3 where segments[0] == "api" && segments[1] == "requests":
                self = Int(segments[2]).map(Route.one) ?? .unknown
            case 4 where segments[0] == "api" && segments[1] == "requests" && segments[3] == "replay":
                self = Int(segments[2]).map(Route.replay) ?? .unknown
            default: self = .unknown
            }
        }
    }

    func respond(to request: APIRequest, on eventLoop: any EventLoop) -> Outcome {
        switch (request.method, Route(request.path)) {
        case (.GET, .page):
            return .now(APIResponse(status: .ok, contentType: "text/html; charset=utf-8", body: InspectorPage.html))
        case (.GET, .list):
            // `?limit=N`: the newest N (the page's first view of a busy agent).
            let limit = request.query["limit"].flatMap { Int($0) }
            let records =
                limit.map { inspector.store.newest(max($0, 0), .withoutBodies) } ?? inspector.store.all(.withoutBodies)
            let now = NIODeadline.now()
            var list: [UInt8] = []
            list.reserveCapacity(records.count * 512)  // as the live feed does (see `EventFeed.flush`)
            list.append(ascii: "{\"requests\":[")
            for (index, record) in records.enumerated() {
                if index > 0 { list.append(UInt8(ascii: ",")) }
                InspectorJSON.summary(record, now: now).appendJSON(to: &list)
            }
            list.append(ascii: "]}")
            return .now(APIResponse(status: .ok, contentType: "application/json", body: ByteBuffer(bytes: list)))
        case (.DELETE, .list):
            inspector.store.clear()
            return .now(APIResponse(status: .noContent, contentType: "text/plain", body: ByteBuffer()))
        case (.GET, .one(let id)):
            guard let record = inspector.store.record(id) else {
                return .now(.error(.notFound, ReplayError.notFound(id: id).description))
            }
            let replays = inspector.store.replays(of: id)
            return .now(.json(InspectorJSON.detail(record, replays: replays)))
        case (.POST, .replay(let id)):
            return replay(id, request: request, on: eventLoop)
        case (.GET, .har):
            // A selection takes only its own records out of the ring (oldest first, as all
            // are), not every record to keep a few.
            let records =
                request.query["ids"].map { selection in
                    Set(selection.split(separator: ",").compactMap { Int($0) }).sorted().compactMap {
                        inspector.store.record($0)
                    }
                } ?? inspector.store.all()
            var response = APIResponse.json(HAR.document(records), snakeCase: false)
            response.headers.append(("content-disposition", "attachment; filename=\"pinhole.har\""))
            return .now(response)
        case (_, .unknown):
            return .now(.error(.notFound, "nothing at \(request.path)"))
        default:
            return .now(.error(.methodNotAllowed, "\(request.method.rawValue) is not allowed on \(request.path)"))
        }
    }

    /// The body of a replay request: every field optional.
    private struct ReplayBody: Decodable {
        var method: String?
        var path: String?
        var headers: [Header]?
        /// The body as text; `body_base64` for bytes.
        var body: String?
        var bodyBase64: String?

        struct Header: Decodable {
            var name: String
            var value: String
        }
    }

    private func replay(_ id: Int, request: APIRequest, on eventLoop: any EventLoop) -> Outcome {
        var changes = ReplayChanges()
        if request.body.readableBytes > 0 {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            do {
                let edits = try decoder.decode(ReplayBody.self, from: Data(request.body.readableBytesView))
                changes.method = edits.method
                changes.path = edits.path
                changes.headers = edits.headers?.map { (name: $0.name, value: $0.value) }
                if let text = edits.body {
                    changes.body = ByteBuffer(string: text)
                } else if let encoded = edits.bodyBase64 {
                    guard let bytes = Data(base64Encoded: encoded) else {
                        return .now(.error(.badRequest, "body_base64 is not base64"))
                    }
                    changes.body = ByteBuffer(bytes: bytes)
                }
            } catch {
                return .now(.error(.badRequest, "the replay's changes are not the JSON this expects: \(error)"))
            }
        }
        let started: (id: Int, done: EventLoopFuture<Void>)
        do throws(ReplayError) {
            started = try inspector.replay(id, changes: changes, on: eventLoop)
        } catch {
            switch error {
            case .notFound: return .now(.error(.notFound, error.description))
            case .bodyNotKept: return .now(.error(.conflict, error.description))
            case .invalid: return .now(.error(.badRequest, error.description))
            case .noTarget: return .now(.error(.serviceUnavailable, error.description))
            }
        }
        let store = inspector.store
        let answer: @Sendable () -> APIResponse = {
            guard let record = store.record(started.id, .withoutBodies) else {
                return .json(["id": started.id], status: .created)
            }
            return .json(InspectorJSON.summary(record), status: .created)
        }
        // `?wait=1`: answer once the replay's response is over (scripts and tests);
        // otherwise at once, and the page follows it on the live feed.
        guard request.query["wait"] == "1" else { return .now(answer()) }
        return .later(started.done.map { answer() })
    }
}
