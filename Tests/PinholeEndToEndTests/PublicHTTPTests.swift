import Foundation
import PinholeCore
import PinholeTestSupport
import Testing

/// The relay reads HTTP/1.1 itself; these send it exact bytes, as curl cannot.
@Suite("Public HTTP/1.1 from raw bytes: pipelining, and smuggling refused", .timeLimit(.minutes(2)))
struct PublicHTTPTests {
    private let client = testScript("raw_client.py")

    /// Starts a relay tunnelling to a local app, sends `requests` (and `padding` bytes)
    /// in one write on one connection, and returns all the relay answered before it
    /// closed. Stops the three peers either way.
    private func send(_ requests: String, padding: Int = 0) async throws -> String {
        let (relay, agent, app) = try await startTunnel()
        let result: Result<String, any Error>
        do {
            let run = try ChildProcess(
                "python3", [client, String(relay.addresses.publicPort), requests, String(padding)])
            result = .success(await run.waitForExit().output)
        } catch {
            result = .failure(error)
        }
        await agent.stop()
        await relay.stop()
        await app.stop()
        return try result.get()
    }

    private let host = "Host: demo.\(TestRelay.domain)\\r\\n"

    @Test("three pipelined requests in one write get three answers, in order")
    func pipelined() async throws {
        let output = try await send(
            "GET /hello HTTP/1.1\\r\\n\(host)\\r\\n"
                + "POST /echo HTTP/1.1\\r\\n\(host)Content-Length: 4\\r\\n\\r\\nabcd"
                + "GET /hello HTTP/1.1\\r\\n\(host)Connection: close\\r\\n\\r\\n")
        #expect(output.components(separatedBy: "HTTP/1.1 200 OK").count == 4, "\(output)")
        let first = try #require(output.range(of: "Hello, world!"))
        let echo = try #require(output.range(of: "abcd"))
        let last = try #require(output.range(of: "Hello, world!", options: .backwards))
        #expect(first.upperBound <= echo.lowerBound && echo.upperBound <= last.lowerBound)
    }

    @Test("Content-Length with Transfer-Encoding gets 400, and nothing behind it is read")
    func smuggling() async throws {
        let output = try await send(
            "POST /echo HTTP/1.1\\r\\n\(host)Content-Length: 5\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n"
                + "GET /hello HTTP/1.1\\r\\n\(host)\\r\\n")
        #expect(output.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "\(output)")
        #expect(output.contains("ambiguous") && output.contains("connection: close"))
        #expect(!output.contains("Hello, world!"), "the request behind it must not be served")
    }

    @Test("an upload refused before it is read still gets its answer, and no 100 Continue")
    func refusedUpload() async throws {
        // 8 MiB for a host with no tunnel: the 404 goes out at once, and the relay must
        // read and drop the body rather than reset the connection under the client.
        let size = 8 << 20
        let output = try await send(
            "POST /upload HTTP/1.1\\r\\nHost: nosuch.\(TestRelay.domain)\\r\\nExpect: 100-continue\\r\\n"
                + "Content-Length: \(size)\\r\\n\\r\\n",
            padding: size)
        #expect(output.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(output.prefix(300))")
        #expect(output.contains("no tunnel for nosuch.\(TestRelay.domain)") && !output.contains("100 Continue"))
    }
}
