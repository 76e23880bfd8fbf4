import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import PinholeCore
import Testing

@Suite("RequestWatch: requests that wait for the app are announced once, after the threshold")
struct RequestWatchTests {
    private final class Heard: Sendable {
        let announced = NIOLockedValueBox<[RequestWatch.Waiting]>([])
        var paths: [String] { announced.withLockedValue { $0.map(\.path) } }
    }

    private func watch(_ loop: EmbeddedEventLoop) -> (RequestWatch, Heard) {
        let heard = Heard()
        let watch = RequestWatch(threshold: .seconds(1), on: loop) { waiting in
            heard.announced.withLockedValue { $0.append(waiting) }
        }
        return (watch, heard)
    }

    @Test("announced at the threshold, not before; its end returns the id it was announced with")
    func announced() throws {
        let loop = EmbeddedEventLoop()
        let (watch, heard) = watch(loop)
        let ticket = watch.begin(method: "GET", path: "/held", startedAt: loop.now)
        loop.advanceTime(by: .milliseconds(999))
        #expect(heard.paths.isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        #expect(heard.paths == ["/held"])
        let waiting = try #require(heard.announced.withLockedValue { $0.first })
        #expect(waiting.method == "GET")
        loop.advanceTime(by: .seconds(5))
        #expect(heard.paths == ["/held"], "once")
        #expect(watch.end(ticket) == waiting.id)
        #expect(watch.count == 0)
    }

    @Test("a request answered in time is never announced, and leaves nothing behind")
    func answeredInTime() {
        let loop = EmbeddedEventLoop()
        let (watch, heard) = watch(loop)
        for _ in 0..<100 {
            let ticket = watch.begin(method: "GET", path: "/quick", startedAt: loop.now)
            loop.advanceTime(by: .milliseconds(5))
            #expect(watch.end(ticket) == nil)
        }
        loop.advanceTime(by: .seconds(2))
        #expect(heard.paths.isEmpty && watch.count == 0)
    }

    @Test("each of several waiting requests is announced at its own threshold, or soon after")
    func several() {
        let loop = EmbeddedEventLoop()
        let (watch, heard) = watch(loop)
        _ = watch.begin(method: "GET", path: "/first", startedAt: loop.now)
        loop.advanceTime(by: .milliseconds(900))
        let second = watch.begin(method: "POST", path: "/second", startedAt: loop.now)
        loop.advanceTime(by: .milliseconds(100))
        #expect(heard.paths == ["/first"])
        loop.advanceTime(by: .milliseconds(899))
        #expect(heard.paths == ["/first"])
        loop.advanceTime(by: .milliseconds(1))
        #expect(heard.paths == ["/first", "/second"])
        #expect(watch.end(second) != nil && watch.count == 1)
    }
}
