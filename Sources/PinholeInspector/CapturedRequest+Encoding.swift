import NIOCore
import NIOHTTP1
import PinholeCore

/// A finished record's compact form: the bytes the ring keeps. Written once, when the
/// exchange ends, into one array of bytes, and read back into a `CapturedRequest` only when the
/// API or the page asks. So a kept record holds no strings, arrays or buffers of its own
/// (nothing to free when it is pushed out), and the fields are all there: every one is
/// written, in this order. Integers are big-endian, as `ByteBuffer` reads them.
///
/// Written in place into an array of the record's exact size (`RecordWriter`), rather
/// than with `ByteBuffer` writes or array appends: a record takes some fifty small
/// writes, and each of those pays for checking its storage's exclusive access and
/// capacity, which cost more than the bytes themselves.
///
/// Layout: the length of the whole record (UInt32), where its bodies start (UInt32), then
/// fixed-size fields, then the strings (UInt32 length and UTF-8; `absent` for nil), the
/// field lists (UInt32 count, then name and value of each; `absent` for nil) and last the
/// bodies (each its total size, Int64, and its kept bytes, UInt32 length first). A list
/// of summaries copies each record up to its bodies only (`copyWithoutBodies`).
extension CapturedRequest {
    private static let absent = UInt32.max
    /// Where `replayOf` lies in an encoded record: after the length, where the bodies
    /// start, and the id.
    static let replayOfOffset = 16
    /// Where the offset of the bodies lies: after the length.
    private static let bodiesAtOffset = 4

    private enum Flag {
        static let deadlinePassed: UInt8 = 1
        static let mayHaveBody: UInt8 = 2
        static let http2: UInt8 = 4
        static let grpcTimeout: UInt8 = 8
    }

    /// This record's bytes in an array of exactly their size (`encodedSize`), never
    /// filled with zeros first: in a debug build (as CI tests), appending 1 MiB of zeros
    /// took 376 ms, and 64 records with 1 MiB bodies, ended at once, held the agent's
    /// event loop for some 20 s.
    func encoded() -> [UInt8] {
        let size = encodedSize
        return [UInt8](unsafeUninitializedCapacity: size) { space, initialized in
            encode(into: UnsafeMutableRawBufferPointer(space))
            initialized = size
        }
    }

    /// Writes this record's bytes, each field in place (see `RecordWriter`), into `space`,
    /// which must be exactly `encodedSize` bytes: the ring's own memory, or an array's.
    func encode(into space: UnsafeMutableRawBufferPointer) {
        var flags: UInt8 = 0
        if deadlinePassed { flags |= Flag.deadlinePassed }
        if head.mayHaveBody { flags |= Flag.mayHaveBody }
        if head.clientProtocol == .http2 { flags |= Flag.http2 }
        if deadline?.source == "grpc-timeout" { flags |= Flag.grpcTimeout }
        let size = space.count
        let bodiesAt = size - Self.size(requestBody) - Self.size(responseBody)
        var writer = RecordWriter(space)
        writer.integer(UInt32(size))
        writer.integer(UInt32(bodiesAt))
        writer.integer(Int64(id))
        writer.integer(Int64(replayOf ?? 0))
        writer.integer(wallClock.bitPattern)
        writer.integer(Self.stateCode(state))
        writer.integer(flags)
        writer.integer(Int32(status ?? -1))
        writer.integer(deadline?.timeout.nanoseconds ?? 0)
        writer.integer(timing.started.uptimeNanoseconds)
        writer.integer(timing.delivered?.uptimeNanoseconds ?? 0)
        writer.integer(timing.requestEnded?.uptimeNanoseconds ?? 0)
        writer.integer(timing.responseStarted?.uptimeNanoseconds ?? 0)
        writer.integer(timing.finished?.uptimeNanoseconds ?? 0)
        Self.write(head.method.rawValue, with: &writer)
        Self.write(head.path, with: &writer)
        Self.write(head.authority, with: &writer)
        Self.write(head.scheme, with: &writer)
        Self.write(head.upgrade, with: &writer)
        Self.write(error, with: &writer)
        Self.write(head.headers, with: &writer)
        Self.write(requestTrailers, with: &writer)
        Self.write(responseHeaders, with: &writer)
        Self.write(responseTrailers, with: &writer)
        Self.write(requestBody, with: &writer)
        Self.write(responseBody, with: &writer)
        writer.finish()
    }

    /// The bytes `encode(into:)` writes: the fixed-size fields, then the rest as they are written.
    var encodedSize: Int {
        // Length, where the bodies start, id, replayOf, wall clock; state and flags;
        // status; deadline; 5 instants.
        let fixed = 4 + 4 + 8 + 8 + 8 + 1 + 1 + 4 + 8 + 5 * 8
        let texts =
            Self.size(head.method.rawValue) + Self.size(head.path) + Self.size(head.authority)
            + Self.size(head.scheme) + Self.size(head.upgrade) + Self.size(error)
        let fields =
            Self.size(head.headers) + Self.size(requestTrailers) + Self.size(responseHeaders)
            + Self.size(responseTrailers)
        return fixed + texts + fields + Self.size(requestBody) + Self.size(responseBody)
    }

    private static func size(_ text: String?) -> Int { 4 + (text?.utf8.count ?? 0) }

    private static func size(_ headers: HTTPHeaders?) -> Int {
        var total = 4
        for (name, value) in headers ?? [:] { total += size(name) + size(value) }
        return total
    }

    private static func size(_ body: CapturedBody) -> Int { bodyHeaderSize + body.kept.readableBytes }

    /// A body's total size (Int64), then how many bytes it kept (UInt32).
    private static let bodyHeaderSize = 8 + 4

    /// Appends to `buffer` the record at `position` of `ring` as a record whose bodies keep
    /// no bytes, their total sizes as they were: all a summary shows, and a fraction of
    /// the copy (a body may keep a MiB). False if the ring no longer holds it.
    static func copyWithoutBodies(of ring: RecordRing, at position: Int, into buffer: inout ByteBuffer) -> Bool {
        guard let bodiesAt = ring.integer(at: position, offset: bodiesAtOffset, as: UInt32.self).map(Int.init),
            let requestTotal = ring.integer(at: position, offset: bodiesAt, as: Int64.self),
            let requestKept = ring.integer(at: position, offset: bodiesAt + 8, as: UInt32.self),
            let responseTotal = ring.integer(
                at: position, offset: bodiesAt + bodyHeaderSize + Int(requestKept), as: Int64.self)
        else { return false }
        let start = buffer.writerIndex
        guard ring.copy(at: position, prefix: bodiesAt, into: &buffer) else { return false }
        buffer.setInteger(UInt32(bodiesAt + 2 * bodyHeaderSize), at: start)
        buffer.writeInteger(requestTotal)
        buffer.writeInteger(UInt32(0))
        buffer.writeInteger(responseTotal)
        buffer.writeInteger(UInt32(0))
        return true
    }

    /// The record encoded at the reader index of `buffer`, which is moved past it; nil if
    /// the bytes are not a whole record.
    static func decode(from buffer: inout ByteBuffer) -> CapturedRequest? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            var record = buffer.readSlice(length: Int(length))
        else { return nil }
        return decodeRecord(&record)
    }

    private static func decodeRecord(_ buffer: inout ByteBuffer) -> CapturedRequest? {
        guard buffer.readInteger(as: UInt32.self) != nil, buffer.readInteger(as: UInt32.self) != nil,
            let id = buffer.readInteger(as: Int64.self),
            let replayOf = buffer.readInteger(as: Int64.self), let wallClock = buffer.readInteger(as: UInt64.self),
            let stateCode = buffer.readInteger(as: UInt8.self), let flags = buffer.readInteger(as: UInt8.self),
            let status = buffer.readInteger(as: Int32.self), let timeout = buffer.readInteger(as: Int64.self)
        else { return nil }
        var instants: [NIODeadline?] = []
        for _ in 0..<5 {
            guard let nanos = buffer.readInteger(as: UInt64.self) else { return nil }
            instants.append(nanos == 0 ? nil : NIODeadline.uptimeNanoseconds(nanos))
        }
        guard let started = instants[0] else { return nil }
        guard let method = readString(&buffer), let path = readString(&buffer), let authority = readString(&buffer),
            let scheme = readString(&buffer), let upgrade = readString(&buffer), let error = readString(&buffer),
            let headers = readHeaders(&buffer), let requestTrailers = readHeaders(&buffer),
            let responseHeaders = readHeaders(&buffer), let responseTrailers = readHeaders(&buffer),
            let requestBody = readBody(&buffer), let responseBody = readBody(&buffer)
        else { return nil }
        let head = ProxyRequestHead(
            method: HTTPMethod(rawValue: method ?? "GET"), path: path ?? "", authority: authority ?? "",
            scheme: scheme ?? "", headers: headers ?? HTTPHeaders(), mayHaveBody: flags & Flag.mayHaveBody != 0,
            upgrade: upgrade, clientProtocol: flags & Flag.http2 != 0 ? .http2 : .http1)
        var timing = CapturedTiming(started: started)
        timing.delivered = instants[1]
        timing.requestEnded = instants[2]
        timing.responseStarted = instants[3]
        timing.finished = instants[4]
        let deadline =
            timeout == 0
            ? nil
            : CallerDeadline(
                timeout: .nanoseconds(timeout),
                source: flags & Flag.grpcTimeout != 0 ? "grpc-timeout" : "x-envoy-expected-rq-timeout-ms")
        var record = CapturedRequest(
            id: Int(id), head: head, replayOf: replayOf == 0 ? nil : Int(replayOf),
            wallClock: Double(bitPattern: wallClock), started: timing.started, deadline: deadline)
        record.timing = timing
        record.state = stateFromCode(stateCode)
        record.deadlinePassed = flags & Flag.deadlinePassed != 0
        record.status = status < 0 ? nil : Int(status)
        record.error = error
        record.requestTrailers = requestTrailers
        record.responseHeaders = responseHeaders
        record.responseTrailers = responseTrailers
        record.requestBody = requestBody
        record.responseBody = responseBody
        return record
    }

    private static func stateCode(_ state: State) -> UInt8 {
        switch state {
        case .pending: 0
        case .responding: 1
        case .complete: 2
        case .failed: 3
        }
    }

    private static func stateFromCode(_ code: UInt8) -> State {
        switch code {
        case 0: .pending
        case 1: .responding
        case 2: .complete
        default: .failed
        }
    }

    private static func write(_ text: String?, with writer: inout RecordWriter) {
        guard let text else {
            writer.integer(absent)
            return
        }
        writer.integer(UInt32(text.utf8.count))
        writer.utf8(text)
    }

    /// nil when the bytes end early; `.some(nil)` for a string that was nil.
    private static func readString(_ buffer: inout ByteBuffer) -> String?? {
        guard let length = buffer.readInteger(as: UInt32.self) else { return nil }
        if length == absent { return .some(nil) }
        guard let text = buffer.readString(length: Int(length)) else { return nil }
        return .some(text)
    }

    private static func write(_ headers: HTTPHeaders?, with writer: inout RecordWriter) {
        guard let headers else {
            writer.integer(absent)
            return
        }
        writer.integer(UInt32(headers.count))
        for (name, value) in headers {
            write(name, with: &writer)
            write(value, with: &writer)
        }
    }

    private static func readHeaders(_ buffer: inout ByteBuffer) -> HTTPHeaders?? {
        guard let count = buffer.readInteger(as: UInt32.self) else { return nil }
        if count == absent { return .some(nil) }
        var fields: [(String, String)] = []
        fields.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let name = readString(&buffer) ?? nil, let value = readString(&buffer) ?? nil else { return nil }
            fields.append((name, value))
        }
        return .some(HTTPHeaders(fields))
    }

    private static func write(_ body: CapturedBody, with writer: inout RecordWriter) {
        writer.integer(Int64(body.totalBytes))
        writer.integer(UInt32(body.kept.readableBytes))
        body.kept.withUnsafeReadableBytes { writer.bytes($0) }
    }

    private static func readBody(_ buffer: inout ByteBuffer) -> CapturedBody? {
        guard let total = buffer.readInteger(as: Int64.self), let length = buffer.readInteger(as: UInt32.self),
            let kept = buffer.readSlice(length: Int(length))
        else { return nil }
        return CapturedBody(kept: kept, totalBytes: Int(total))
    }
}
