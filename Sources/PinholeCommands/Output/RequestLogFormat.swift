import NIOCore
import PinholeCore

/// The request log's lines, made as bytes under the output's lock: one line (or JSON
/// object) per finished request, one for a request that has waited for the app, and the
/// heading the text lines sit under. Lines for requests still waiting are kept here too,
/// for a terminal to show below the others (see `OutputWriter`).
struct RequestLogFormat: OutputState {
    enum Style: Sendable {
        /// Columns under a heading.
        case text
        /// One JSON object per line.
        case json
    }

    var style: Style
    /// Whether waiting requests are shown live, at the bottom of a terminal, instead of
    /// as a line each.
    var live: Bool
    /// The tunnel's name, for JSON events.
    var tunnel = "embedded"
    private var clock = LogClock()
    private var waiting: [RequestWatch.Waiting] = []

    init(style: Style = .text, live: Bool = false) {
        self.style = style
        self.live = live
    }

    /// Takes `other`'s style, liveness and tunnel name; keeps its own clock and live lines.
    mutating func adoptSettings(of other: RequestLogFormat) {
        style = other.style
        live = other.live
        tunnel = other.tunnel
    }

    // MARK: Columns

    private enum Width {
        static let time = 8
        static let method = 7
        /// Method, a space, and path together: a long method leaves the path less room.
        static let methodAndPath = 49
        static let status = 6
        static let duration = 9
        static let size = 9
        static let gap = 2
    }

    /// The heading the text lines sit under.
    static var heading: String {
        var line: [UInt8] = []
        line.append("time", paddedTo: Width.time + Width.gap)
        line.append("method", paddedTo: Width.method + 1)
        line.append("path", paddedTo: Width.methodAndPath - Width.method - 1)
        appendRight("status", width: Width.status, to: &line)
        line.appendSpaces(Width.gap)
        appendRight("duration", width: Width.duration, to: &line)
        line.appendSpaces(Width.gap)
        appendRight("size", width: Width.size, to: &line)
        return String(decoding: line, as: UTF8.self)
    }

    // MARK: Finished requests

    /// Appends the line for a finished request.
    mutating func append(_ record: ExchangeRecord, now: NIODeadline = .now(), to line: inout [UInt8]) {
        if let id = record.waitingID { waiting.removeAll { $0.id == id } }
        let started = clock.wallTime(of: record.startedAt, now: now)
        switch style {
        case .text:
            appendColumns(started, record.method, record.grpcMethod ?? record.path, to: &line)
            if record.status > 0 {
                line.append(decimal: record.status, width: Width.status)
            } else {
                Self.appendRight("-", width: Width.status, to: &line)
            }
            line.appendSpaces(Width.gap)
            Self.appendRight(width: Width.duration, to: &line) { Self.appendDuration(record.duration, to: &$0) }
            line.appendSpaces(Width.gap)
            Self.appendRight(width: Width.size, to: &line) { Self.appendSize(record.bytesOut, to: &$0) }
            appendNotes(record, to: &line)
        case .json:
            appendJSON(record, started, to: &line)
        }
        line.append(UInt8(ascii: "\n"))
    }

    private func appendNotes(_ record: ExchangeRecord, to line: inout [UInt8]) {
        var first = true
        func separate(_ line: inout [UInt8]) {
            if first {
                line.appendSpaces(Width.gap)
                first = false
            } else {
                line.append(ascii: "; ")
            }
        }
        switch record.outcome {
        case .complete:
            break
        case .answeredByPinhole(let error):
            separate(&line)
            line.append(ascii: "pinhole: ")
            line.append(escapingControls: error.logReason)
        case .cutShort, .abandoned:
            separate(&line)
            Self.appendFailure(record, to: &line)
        }
        if let grpcStatus = record.grpcStatus {
            separate(&line)
            line.append(ascii: "grpc-status ")
            line.append(decimal: grpcStatus)
            if let name = GRPCStatusName.of(grpcStatus) {
                line.append(UInt8(ascii: " "))
                line.append(name)
            }
        }
    }

    /// What went wrong, for the text note and JSON's `error`.
    private static func appendFailure(_ record: ExchangeRecord, to line: inout [UInt8]) {
        switch record.outcome {
        case .complete:
            break
        case .answeredByPinhole(let error):
            line.append(escapingControls: error.logReason)
        case .cutShort(let error, let expected):
            line.append(ascii: "cut short after ")
            line.append(decimal: record.bytesOut)
            if let expected {
                line.append(ascii: " of ")
                line.append(decimal: expected)
            }
            line.append(ascii: " bytes")
            if let error {
                line.append(ascii: ": ")
                line.append(escapingControls: error.logReason)
            }
        case .abandoned(let reason):
            line.append(escapingControls: reason)
        }
    }

    private mutating func appendJSON(_ record: ExchangeRecord, _ started: LogClock.WallTime, to line: inout [UInt8]) {
        line.append(ascii: "{\"bytes_in\":")
        line.append(decimal: record.bytesIn)
        line.append(ascii: ",\"bytes_out\":")
        line.append(decimal: record.bytesOut)
        line.append(ascii: ",\"duration_ms\":")
        line.append(tenths: Int((record.duration.nanoseconds + 50_000) / 100_000))
        if record.outcome != .complete {
            line.append(ascii: ",\"error\":")
            var failure: [UInt8] = []
            Self.appendFailure(record, to: &failure)
            line.append(jsonString: String(decoding: failure, as: UTF8.self))
        }
        line.append(ascii: ",\"event\":\"request\"")
        if let grpcMethod = record.grpcMethod {
            line.append(ascii: ",\"grpc_method\":")
            line.append(jsonString: grpcMethod)
        }
        if let grpcStatus = record.grpcStatus {
            line.append(ascii: ",\"grpc_status\":")
            line.append(decimal: grpcStatus)
        }
        line.append(ascii: ",\"method\":")
        line.append(jsonString: record.method)
        line.append(ascii: ",\"path\":")
        line.append(jsonString: record.path)
        line.append(ascii: ",\"protocol\":")
        line.append(jsonString: record.protocol)
        line.append(ascii: ",\"status\":")
        line.append(decimal: record.status)
        appendTimeAndTunnel(started, to: &line)
        if let id = record.waitingID {
            line.append(ascii: ",\"waiting_id\":")
            line.append(decimal: id)
        }
        line.append(UInt8(ascii: "}"))
    }

    private mutating func appendTimeAndTunnel(_ started: LogClock.WallTime, to line: inout [UInt8]) {
        line.append(ascii: ",\"time\":\"")
        clock.appendRFC3339(started, to: &line)
        line.append(ascii: "\",\"tunnel\":")
        line.append(jsonString: tunnel)
    }

    // MARK: Waiting requests

    /// A request has waited for the app: on a terminal it joins the live lines; else its
    /// line (or JSON event) is appended now. Returns whether anything was appended.
    @discardableResult
    mutating func append(_ request: RequestWatch.Waiting, now: NIODeadline = .now(), to line: inout [UInt8]) -> Bool {
        let started = clock.wallTime(of: request.startedAt, now: now)
        switch style {
        case .text where live:
            waiting.append(request)
            return false
        case .text:
            appendWaitingLine(request, started, now: now, to: &line)
        case .json:
            line.append(ascii: "{\"event\":\"waiting\",\"id\":")
            line.append(decimal: request.id)
            line.append(ascii: ",\"method\":")
            line.append(jsonString: request.method)
            line.append(ascii: ",\"path\":")
            line.append(jsonString: request.path)
            appendTimeAndTunnel(started, to: &line)
            line.append(ascii: ",\"waited_ms\":")
            line.append(decimal: Int((now - request.startedAt).nanoseconds / 1_000_000))
            line.append(UInt8(ascii: "}"))
        }
        line.append(UInt8(ascii: "\n"))
        return true
    }

    private mutating func appendWaitingLine(
        _ request: RequestWatch.Waiting, _ started: LogClock.WallTime, now: NIODeadline, to line: inout [UInt8]
    ) {
        appendColumns(started, request.method, request.path, to: &line)
        Self.appendRight("…", width: Width.status, to: &line)
        line.appendSpaces(Width.gap)
        Self.appendRight(width: Width.duration, to: &line) {
            Self.appendDuration(now - request.startedAt, to: &$0)
        }
        line.appendSpaces(Width.gap + Width.size + Width.gap)
        line.append(ascii: "waiting for the app")
    }

    var hasLiveLines: Bool { !waiting.isEmpty }

    mutating func appendLiveLines(to output: inout [UInt8], now: NIODeadline, width: Int) -> Int {
        let shown = waiting.prefix(5)
        for request in shown {
            var line: [UInt8] = []
            appendWaitingLine(request, clock.wallTime(of: request.startedAt, now: now), now: now, to: &line)
            let text = String(decoding: line, as: UTF8.self)
            output.append(text, clippedTo: width)
            output.append(UInt8(ascii: "\n"))
        }
        guard waiting.count > shown.count else { return shown.count }
        output.append(ascii: "          … and ")
        output.append(decimal: waiting.count - shown.count)
        output.append(ascii: " more waiting\n")
        return shown.count + 1
    }

    mutating func appendDroppedNotice(_ count: Int, to output: inout [UInt8]) {
        switch style {
        case .text:
            output.append(ascii: "          (")
            output.append(decimal: count)
            output.append(ascii: " lines dropped: the output did not keep up)\n")
        case .json:
            output.append(ascii: "{\"dropped\":")
            output.append(decimal: count)
            output.append(ascii: ",\"event\":\"lines_dropped\"}\n")
        }
    }

    // MARK: Pieces

    /// Time, method and path, each under its heading, and the gap before the status.
    private mutating func appendColumns(
        _ started: LogClock.WallTime, _ method: String, _ path: String, to line: inout [UInt8]
    ) {
        clock.appendLocalTime(started, to: &line)
        line.appendSpaces(Width.gap)
        let methodColumns = line.append(method, clippedTo: Width.methodAndPath / 2)
        line.appendSpaces(Width.method - methodColumns)
        line.append(UInt8(ascii: " "))
        let pathWidth = Width.methodAndPath - max(methodColumns, Width.method) - 1
        let pathColumns = line.append(path, clippedTo: pathWidth)
        line.appendSpaces(pathWidth - pathColumns)
    }

    private static func appendRight(_ text: String, width: Int, to line: inout [UInt8]) {
        line.appendSpaces(width - text.columns)
        line.append(text)
    }

    /// What `body` appends, right-aligned in `width` columns (it writes ASCII).
    private static func appendRight(width: Int, to line: inout [UInt8], _ body: (inout [UInt8]) -> Void) {
        let start = line.count
        body(&line)
        let pad = width - (line.count - start)
        if pad > 0 { line.insert(contentsOf: repeatElement(UInt8(ascii: " "), count: pad), at: start) }
    }

    /// `12.3 ms`, `1.23 s`, `2m 05s`, `1h 02m`.
    static func appendDuration(_ duration: TimeAmount, to line: inout [UInt8]) {
        let nanoseconds = Int(max(0, duration.nanoseconds))
        if nanoseconds < 999_950_000 {
            line.append(tenths: (nanoseconds + 50_000) / 100_000)
            line.append(ascii: " ms")
        } else if nanoseconds < 59_995_000_000 {
            let hundredths = (nanoseconds + 5_000_000) / 10_000_000
            line.append(decimal: hundredths / 100)
            line.append(UInt8(ascii: "."))
            line.append(hundredths % 100, zeroPaddedTo: 2)
            line.append(ascii: " s")
        } else {
            let seconds = nanoseconds / 1_000_000_000
            let (big, small, units): (Int, Int, (StaticString, StaticString)) =
                seconds < 3600
                ? (seconds / 60, seconds % 60, ("m ", "s")) : (seconds / 3600, seconds / 60 % 60, ("h ", "m"))
            line.append(decimal: big)
            line.append(ascii: units.0)
            line.append(small, zeroPaddedTo: 2)
            line.append(ascii: units.1)
        }
    }

    /// `13 B`, `4.5 kB`, `123 kB`, `1.2 MB`, `3.4 GB` (decimal units).
    static func appendSize(_ bytes: Int, to line: inout [UInt8]) {
        guard bytes >= 1000 else {
            line.append(decimal: bytes)
            line.append(ascii: " B")
            return
        }
        var unit = 1000
        var name: StaticString = " kB"
        if bytes >= 999_950_000 {
            unit = 1_000_000_000
            name = " GB"
        } else if bytes >= 999_950 {
            unit = 1_000_000
            name = " MB"
        }
        let tenths = (bytes * 10 + unit / 2) / unit
        if tenths >= 1000 {
            line.append(decimal: tenths / 10)
        } else {
            line.append(tenths: tenths)
        }
        line.append(ascii: name)
    }
}

/// The names of gRPC status codes (grpc/doc/statuscodes.md), for the log.
enum GRPCStatusName {
    private static let names = [
        "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
        "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
    ]

    static func of(_ code: Int) -> String? {
        names.indices.contains(code) ? names[code] : nil
    }
}
