import Foundation
import NIOHTTP1
import PinholeTunnel
import Testing

@Suite("Header conditions, as the relay evaluates a developer's match")
struct HeaderConditionTests {
    @Test func exactPrefixAndRegexOnTheWholeValue() {
        let headers = HTTPHeaders([("X-User", "alice"), ("baggage", "tenant=a, user=alice;p")])
        #expect(HeaderCondition(name: "x-user", kind: .exact, value: "alice").matches(headers))
        #expect(!HeaderCondition(name: "x-user", kind: .exact, value: "ali").matches(headers))
        #expect(HeaderCondition(name: "X-USER", kind: .prefix, value: "ali").matches(headers))
        #expect(HeaderCondition(name: "x-user", kind: .regex, value: "a.*e").matches(headers))
        #expect(!HeaderCondition(name: "x-user", kind: .regex, value: "lic").matches(headers), "whole value only")
        #expect(
            HeaderCondition(
                name: "baggage", kind: .regex, value: "(.*,)?[ \\t]*user[ \\t]*=[ \\t]*alice[ \\t]*(;[^,]*)?(,.*)?"
            )
            .matches(headers))
        #expect(!HeaderCondition(name: "x-team", kind: .prefix, value: "").matches(headers), "absent never matches")
    }

    @Test func severalFieldsAreJoinedWithCommas() {
        let headers = HTTPHeaders([("x-user", "alice"), ("x-user", "bob")])
        #expect(HeaderCondition(name: "x-user", kind: .exact, value: "alice,bob").matches(headers))
    }

    @Test func helloWithoutServiceStillDecodes() throws {
        let old = #"{"version":1,"token":"t","name":"n","aliases":[],"software":"pinhole-agent"}"#
        let hello = try JSONDecoder().decode(AgentHello.self, from: Data(old.utf8))
        #expect(hello.service == nil)
        var withService = AgentHello(token: "t", name: "n")
        withService.service = ServiceShare(
            service: "checkout", namespace: "shop", mode: "route",
            match: HeaderCondition(name: "x-user", kind: .exact, value: "alice"), retries: 0)
        let decoded = try JSONDecoder().decode(AgentHello.self, from: JSONEncoder().encode(withService))
        #expect(decoded == withService)
    }
}
