import Foundation
import NIOCore
import PinholeCore
import Testing

@testable import PinholeCommands

@Suite("The request log's lines: columns, reasons, JSON fields")
struct RequestLogFormatTests {
    private static let now = NIODeadline.now()

    private func record(
        _ method: String = "GET", _ path: String = "/hello", status: Int = 200, milliseconds: Int64 = 12,
        bytesOut: Int = 13, outcome: ExchangeRecord.Outcome = .complete
    ) -> ExchangeRecord {
        ExchangeRecord(
            method: method, path: path, status: status, duration: .milliseconds(milliseconds),
            startedAt: Self.now - .milliseconds(milliseconds), bytesIn: 4, bytesOut: bytesOut, outcome: outcome)
    }

    private func text(_ record: ExchangeRecord, format: inout RequestLogFormat) -> String {
        var line: [UInt8] = []
        format.append(record, now: Self.now, to: &line)
        return String(decoding: line, as: UTF8.self)
    }

    private func text(_ record: ExchangeRecord) -> String {
        var format = RequestLogFormat()
        return text(record, format: &format)
    }

    /// The column (in characters) where `word` ends in `line`.
    private func end(of word: String, in line: String) throws -> Int {
        let range = try #require(line.range(of: word), "\(word) in \(line)")
        return line[..<range.upperBound].count
    }

    @Test("status, duration and size end under their headings, whatever the method and path")
    func alignment() throws {
        let heading = RequestLogFormat.heading
        let lines = [
            text(record()),
            text(record("PROPFIND", "/dav/collection/", status: 207, milliseconds: 1_234, bytesOut: 4_567)),
            text(record("VERSION-CONTROL", "/" + String(repeating: "long-path/", count: 12), milliseconds: 125_000)),
            text(record("DELETE", "/ünïcode/päth", status: 204, milliseconds: 0, bytesOut: 0)),
        ]
        for line in lines.map({ String($0.dropLast()) }) {
            let columns = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            // time, method, path, status, duration (two words), size (two words)
            #expect(columns.count == 8, "\(line)")
            #expect(try end(of: columns[3], in: line) == end(of: "status", in: heading), "\(line)")
            #expect(try end(of: "\(columns[4]) \(columns[5])", in: line) == end(of: "duration", in: heading), "\(line)")
            #expect(try end(of: "\(columns[6]) \(columns[7])", in: line) == end(of: "size", in: heading), "\(line)")
        }
        #expect(lines[1].contains(" PROPFIND /dav/collection/ "), "a long method is not cut")
        #expect(lines[2].contains(" VERSION-CONTROL /long-path/"))
        #expect(lines[2].contains("…"), "a long path is cut, and says so")
        #expect(lines[2].contains("2m 05s"))
        #expect(lines[1].contains("1.23 s") && lines[1].contains("4.6 kB"))
        #expect(lines[0].contains("12.0 ms") && lines[0].contains("13 B"))
    }

    @Test("Pinhole's answers give their reason; the app's own 5xx is told apart by having none")
    func reasons() {
        let refused = text(
            record(
                status: 502, bytesOut: 80,
                outcome: .answeredByPinhole(
                    .targetUnreachable(target: "http://127.0.0.1:3000", reason: "connection refused"))))
        #expect(refused.hasSuffix("  pinhole: connection refused\n"), "\(refused)")
        let lost = text(
            record(status: 502, outcome: .answeredByPinhole(.tunnelLost(host: "a", reason: "connection reset"))))
        #expect(lost.hasSuffix("  pinhole: tunnel went down (connection reset)\n"), "\(lost)")
        let timedOut = text(record(status: 504, outcome: .answeredByPinhole(.timedOut(seconds: 30))))
        #expect(timedOut.hasSuffix("  pinhole: timed out after 30 s (--request-timeout)\n"), "\(timedOut)")
        let garbage = text(
            record(status: 502, outcome: .answeredByPinhole(.protocolViolation("t sent a status line 'SSH-2.0\r\n'"))))
        #expect(garbage.hasSuffix("  pinhole: invalid response: t sent a status line 'SSH-2.0\\r\\n'\n"), "\(garbage)")
        let appError = text(record(status: 500))
        #expect(appError.hasSuffix(" 13 B\n") && !appError.contains("pinhole"), "\(appError)")
    }

    @Test("a response cut short says after how many of how many bytes, and why")
    func cutShort() {
        let cut = text(
            record(bytesOut: 9, outcome: .cutShort(.targetClosedEarly(target: "http://127.0.0.1:3000"), expected: 100)))
        #expect(cut.hasSuffix("9 B  cut short after 9 of 100 bytes: the app closed the connection\n"), "\(cut)")
        let unknownLength = text(record(bytesOut: 9, outcome: .cutShort(nil, expected: nil)))
        #expect(unknownLength.hasSuffix("  cut short after 9 bytes\n"), "\(unknownLength)")
        let left = text(record(status: 0, bytesOut: 0, outcome: .abandoned(reason: "the client went away")))
        #expect(left.contains("     -  ") && left.hasSuffix("  the client went away\n"), "\(left)")
    }

    @Test("a gRPC call shows its method and grpc-status")
    func grpc() throws {
        var call = record("POST", "/greeter.Greeter/SayHello")
        call.protocol = "HTTP/2"
        call.grpcMethod = "/greeter.Greeter/SayHello"
        call.grpcStatus = 14
        #expect(text(call).hasSuffix("  grpc-status 14 UNAVAILABLE\n"), "\(text(call))")
        let object = try json(call)
        #expect(object["protocol"] as? String == "HTTP/2")
        #expect(object["grpc_method"] as? String == "/greeter.Greeter/SayHello")
        #expect(object["grpc_status"] as? Int == 14)
    }

    private func json(_ record: ExchangeRecord, tunnel: String = "demo") throws -> [String: Any] {
        var format = RequestLogFormat(style: .json)
        format.tunnel = tunnel
        let line = text(record, format: &format)
        #expect(line.hasSuffix("}\n") && line.filter { $0 == "\n" }.count == 1)
        return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    }

    @Test("JSON request events carry time, byte counts, error, protocol and tunnel")
    func jsonFields() throws {
        let object = try json(
            record(
                "PROPFIND", "/a \"quoted\"\\path", status: 502, bytesOut: 80,
                outcome: .answeredByPinhole(.targetUnreachable(target: "t", reason: "connection refused"))))
        #expect(object["event"] as? String == "request")
        #expect(object["method"] as? String == "PROPFIND")
        #expect(object["path"] as? String == "/a \"quoted\"\\path")
        #expect(object["status"] as? Int == 502)
        #expect(object["bytes_in"] as? Int == 4)
        #expect(object["bytes_out"] as? Int == 80)
        #expect(object["duration_ms"] as? Double == 12.0)
        #expect(object["error"] as? String == "connection refused")
        #expect(object["protocol"] as? String == "HTTP/1.1")
        #expect(object["tunnel"] as? String == "demo")
        #expect(object["grpc_method"] == nil && object["grpc_status"] == nil)
        let time = try #require(object["time"] as? String)
        #expect(time.wholeMatch(of: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/) != nil, "\(time)")
        let parsed = try #require(ISO8601DateFormatter.withMilliseconds.date(from: time))
        #expect(abs(parsed.timeIntervalSinceNow) < 60, "the time is the request's, in UTC")

        let fine = try json(record())
        #expect(fine["error"] == nil)
    }

    @Test("a waiting request: a line under the headings in a file, an event in JSON, a live line on a terminal")
    func waiting() throws {
        let request = RequestWatch.Waiting(
            id: 7, method: "GET", path: "/slow", startedAt: Self.now - .milliseconds(1_020))
        var format = RequestLogFormat()
        var line: [UInt8] = []
        #expect(format.append(request, now: Self.now, to: &line))
        let text = String(decoding: line, as: UTF8.self)
        let heading = RequestLogFormat.heading
        #expect(text.hasSuffix("  waiting for the app\n"), "\(text)")
        #expect(try end(of: "1.02 s", in: text) == end(of: "duration", in: heading), "\(text)")
        #expect(try end(of: "…", in: text) == end(of: "status", in: heading), "\(text)")

        var json = RequestLogFormat(style: .json)
        line = []
        json.append(request, now: Self.now, to: &line)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line)) as? [String: Any])
        #expect(object["event"] as? String == "waiting")
        #expect(object["id"] as? Int == 7)
        #expect(object["waited_ms"] as? Int == 1_020)
        #expect(object["path"] as? String == "/slow")

        var live = RequestLogFormat(live: true)
        line = []
        #expect(!live.append(request, now: Self.now, to: &line), "no line: it is drawn live")
        #expect(line.isEmpty && live.hasLiveLines)
        var screen: [UInt8] = []
        #expect(live.appendLiveLines(to: &screen, now: Self.now + .seconds(2), width: 120) == 1)
        #expect(String(decoding: screen, as: UTF8.self).contains("3.02 s"))
        var finished = record(milliseconds: 3_020)
        finished.waitingID = 7
        line = []
        live.append(finished, now: Self.now, to: &line)
        #expect(!live.hasLiveLines, "the finished line replaces it")
    }

    @Test("durations and sizes")
    func units() {
        func duration(_ amount: TimeAmount) -> String {
            var line: [UInt8] = []
            RequestLogFormat.appendDuration(amount, to: &line)
            return String(decoding: line, as: UTF8.self)
        }
        func size(_ bytes: Int) -> String {
            var line: [UInt8] = []
            RequestLogFormat.appendSize(bytes, to: &line)
            return String(decoding: line, as: UTF8.self)
        }
        #expect(duration(.microseconds(2_149)) == "2.1 ms")
        #expect(duration(.microseconds(999_949)) == "999.9 ms")
        #expect(duration(.microseconds(999_960)) == "1.00 s")
        #expect(duration(.milliseconds(59_990)) == "59.99 s")
        #expect(duration(.seconds(3_725)) == "1h 02m")
        #expect(size(0) == "0 B" && size(999) == "999 B" && size(1_000) == "1.0 kB")
        #expect(size(123_456) == "123 kB" && size(999_999) == "1.0 MB" && size(5_000_000_000) == "5.0 GB")
    }
}

extension ISO8601DateFormatter {
    fileprivate static var withMilliseconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
