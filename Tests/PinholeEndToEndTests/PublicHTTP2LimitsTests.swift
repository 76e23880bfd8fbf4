import Foundation
import PinholeCore
import PinholeRelay
import PinholeTestSupport
import Testing

/// The fair-share limits on public HTTP/2 streams, with HTTP/2 clients no one here wrote
/// (the h2 library, curl): the in-flight caps HTTP/1.1 has, and `--stall-timeout`.
@Suite("Public HTTP/2 fair share", .serialized, .timeLimit(.minutes(3)))
struct PublicHTTP2LimitsTests {
    private struct StreamsResult: Decodable {
        let counts: [String: Int]
        let bodies: [String: String]
    }

    @Test(
        "30 held HTTP/2 streams from one address: 10 in flight, 20 get 503 naming the cap; another address is served")
    func perAddressCap() async throws {
        try await withTunnel(configure: {
            $0.inFlightCaps = .init(perAddress: 10, perTunnel: 1024, waitLimit: .seconds(1))
        }) { relay, app in
            let streams = try ChildProcess(
                try testPython(),
                [
                    testScript("h2_many_streams.py"), String(relay.addresses.publicPort), "demo.\(TestRelay.domain)",
                    "30", "/events",
                ])
            // The 10 admitted get their head (and the first event) and are held by the app;
            // the other 20 wait 1 s in line, then get 503.
            try await streams.waitForOutput {
                $0.components(separatedBy: "status 503").count - 1 == 20
                    && $0.components(separatedBy: "status 200").count - 1 == 10
            }
            // 127.0.0.2 has its own share, over HTTP/2 and HTTP/1.1 alike.
            for extra in [["--http2-prior-knowledge"], []] {
                let other = try await curl(
                    relay.curl("demo", "/hello", extra + ["--interface", "127.0.0.2", "--max-time", "20"]))
                #expect(other.status == 0 && other.output == "Hello, world!", "\(other.output)")
            }
            // The held 10 count for HTTP/1.1 requests from the same address too.
            let http1 = try await curl(
                relay.curl("demo", "/hello", ["--max-time", "20", "-w", "\n%{http_code}"]))
            #expect(http1.output.hasSuffix("\n503"), "\(http1.output)")
            #expect(http1.output.contains("--max-in-flight-per-address"), "\(http1.output)")

            app.releaseEvents()
            let (status, output) = await streams.waitForExit()
            #expect(status == 0, "\(output)")
            let json = try #require(output.split(separator: "\n").last.map(String.init))
            let result = try JSONDecoder().decode(StreamsResult.self, from: Data(json.utf8))
            #expect(result.counts == ["200": 10, "503": 20], "\(result.counts)")
            #expect(result.bodies["503"]?.contains("--max-in-flight-per-address") ?? false, "\(result.bodies)")

            // Every place came back when its stream ended: 10 at once get in again.
            let again = try ChildProcess(
                try testPython(),
                [
                    testScript("h2_many_streams.py"), String(relay.addresses.publicPort), "demo.\(TestRelay.domain)",
                    "10", "/hello",
                ])
            let (_, againOutput) = await again.waitForExit()
            let againJSON = try #require(againOutput.split(separator: "\n").last.map(String.init))
            let againResult = try JSONDecoder().decode(StreamsResult.self, from: Data(againJSON.utf8))
            #expect(againResult.counts == ["200": 10], "\(againOutput)")
        }
    }

    @Test(
        "a stalled HTTP/2 upload gets 408, an unread download is reset, a stream the app holds stays")
    func stalls() async throws {
        try await withTunnel(configure: { $0.stallTimeout = .seconds(2) }) { relay, app in
            let client = try ChildProcess(
                try testPython(),
                [testScript("h2_stalls.py"), String(relay.addresses.publicPort), "demo.\(TestRelay.domain)", "8000000"])
            let output = try await client.waitForOutput { $0.contains("events open") || $0.contains("Error") }
            #expect(
                output.contains("upload 408 pinhole: the client sent none of the request body for 2 s"), "\(output)")
            #expect(output.contains("--stall-timeout"), "\(output)")
            // INTERNAL_ERROR: the answer had begun, so a reset is all that is left.
            #expect(output.contains("download reset 2"), "\(output)")
            #expect(output.contains("events open"), "the app held it; the client was not the one stalling")
            app.releaseEvents()
            client.send("release\n")
            let (status, final) = await client.waitForExit()
            #expect(status == 0 && final.contains("events ended"), "\(final)")
        }
    }
}
