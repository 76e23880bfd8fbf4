import NIOCore
import NIOPosix
import Testing

@testable import PinholeCore

/// Messages a person reads, word for word: each says what happened, in a sentence,
/// with no Swift type or function name in it.
@Suite("Core messages: targets, app answers, connection failures")
struct MessageWordingTests {
    @Test("a target URL with a path is refused, saying why; a bare trailing slash is fine")
    func targetPathRefused() throws {
        #expect(throws: TargetAddressError.self) { try TargetAddress(parsing: "http://localhost:3000/api") }
        do {
            _ = try TargetAddress(parsing: "http://localhost:3000/api")
        } catch {
            #expect(
                error.description
                    == "'http://localhost:3000/api' is not a target address: a target is only scheme, host and port; "
                    + "the path '/api' would be ignored, since each request keeps its own path "
                    + "(give http://localhost:3000)")
        }
        #expect(try TargetAddress(parsing: "http://localhost:3000/") == TargetAddress(host: "localhost", port: 3000))
        #expect(throws: TargetAddressError.self) { try TargetAddress(parsing: "http://localhost:3000?x=1") }
    }

    @Test("the bodies of an app that closed without answering, and of a stopped agent")
    func exchangeBodies() {
        let closed = ExchangeError.targetClosedWithoutAnswer(target: "http://localhost:3000")
        #expect(closed.status == .badGateway)
        #expect(
            closed.message
                == "pinhole: http://localhost:3000 accepted the request and closed the connection without answering")
        #expect(ExchangeError.agentStopped.status == .serviceUnavailable)
        #expect(ExchangeError.agentStopped.message == "pinhole: the agent stopped")
    }

    @Test("a status line with a bad code says so; raw control characters are escaped")
    func statusLineWording() {
        func failure(_ text: String) -> String? {
            var parser = HTTP1ResponseParser()
            parser.expectResponse(bodyAllowed: true)
            var input = ByteBuffer(string: text)
            do {
                _ = try parser.next(from: &input)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(
            failure("HTTP/1.1 abc OK\r\n\r\n")
                == "a status line whose status code is not three digits: 'HTTP/1.1 abc OK'")
        #expect(
            failure("HTTP/1.1 20 OK\r\n\r\n") == "a status line whose status code is not three digits: 'HTTP/1.1 20 OK'"
        )
        #expect(failure("oops\nmore\r\n") == "a status line that is not HTTP/1.x: 'oops\\nmore\\r\\n'")
        #expect(
            failure("HTTP/2.0 200 OK\r\n\r\n") == "a status line that is not HTTP/1.x: 'HTTP/2.0 200 OK\\r\\n\\r\\n'")
        #expect(failure("\u{1B}[0m\r\n") == "a status line that is not HTTP/1.x: '\\u{1B}[0m\\r\\n'")
    }

    @Test("a port in use is described by the system's sentence, not by NIO's function names")
    func addressInUse() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let first = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        defer { first.close(promise: nil) }
        let port = try #require(first.localAddress?.port)
        do {
            let second = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: port).get()
            second.close(promise: nil)
            Issue.record("the second bind succeeded")
        } catch {
            #expect(ConnectionErrorText.describe(error) == "address already in use")
            #expect(ConnectionErrorText.errno(of: error) == EADDRINUSE)
        }
    }

    @Test("a refused connection and an unknown host are recognised and worded plainly")
    func refusedAndUnknown() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let listener = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(listener.localAddress?.port)
        try await listener.close()
        do {
            _ = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: port).get()
            Issue.record("connected to a closed port")
        } catch {
            #expect(ConnectionErrorText.describe(error) == "connection refused")
            #expect(ConnectionErrorText.isRefused(error))
        }
        do {
            _ = try await ClientBootstrap(group: group).connect(host: "no-such-host.invalid", port: 80).get()
            Issue.record("resolved a .invalid name")
        } catch {
            #expect(ConnectionErrorText.isUnknownHost(error))
            #expect(
                ConnectionErrorText.describe(error)
                    == "cannot resolve the host name 'no-such-host.invalid'")
        }
    }
}
