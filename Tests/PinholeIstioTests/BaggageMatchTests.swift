import PinholeCore
import PinholeIstio
import Testing

private func matches(_ match: HeaderMatch, _ value: String) throws -> Bool {
    // Envoy's RE2 matches the whole value; so does wholeMatch.
    try Regex(match.value).wholeMatch(in: value) != nil
}

@Suite("Matching on baggage")
struct BaggageMatchTests {
    @Test(arguments: [
        "user=alice",
        "user=alice;ttl=60",
        "tenant=a, user=alice",
        "tenant=a,user=alice,region=eu",
        "tenant=a ,\tuser = alice ; prop ,region=eu",
        "user=alice;a=b;c, x=y",
    ])
    func memberAnywhereInTheListMatches(baggage: String) throws {
        #expect(try matches(HeaderMatch(baggage: "user=alice"), baggage))
    }

    @Test(arguments: [
        "user=alicex", "user=bob", "xuser=alice", "user=bob, tenant=alice", "other=user=alice", "", "user=",
        "myuser=alice;user=alice",
    ])
    func otherMembersDoNot(baggage: String) throws {
        #expect(try !matches(HeaderMatch(baggage: "user=alice"), baggage))
    }

    @Test func keyAndValueAreLiteralNotPatterns() throws {
        let match = try HeaderMatch(baggage: "dev.user=a+b")
        #expect(match.name == "baggage" && match.kind == .regex)
        #expect(try matches(match, "dev.user=a+b"))
        #expect(try !matches(match, "devXuser=a+b"))
        #expect(try !matches(match, "dev.user=aab"))
    }

    @Test(arguments: [
        ("user", "has no '='"), ("=alice", "key is empty"), ("user=", "value is empty"),
        ("us er=alice", "key contains"), ("user=al ice", "percent-encode"), ("user=a,b", "percent-encode"),
    ])
    func malformedIsRefused(text: String, fragment: String) {
        #expect {
            try HeaderMatch(baggage: text)
        } throws: { error in
            "\(error)".contains(fragment)
        }
    }

    @Test func matchHeaderWorksOnBaggageToo() throws {
        let match = try HeaderMatch(parsing: "baggage~.*user=alice.*")
        #expect(match.name == "baggage" && match.kind == .regex)
    }

    @Test(.enabled(if: IstioSchema.isAvailable), arguments: [IstioMode.redirect, .route], IstioSchema.schemaSets)
    func rendersAndPassesIstiosSchema(mode: IstioMode, schemaSet: String) throws {
        let plan = try IstioPlan(
            mode: mode, service: "checkout", namespace: "shop", headerMatch: HeaderMatch(baggage: "user=alice"),
            tunnel: TunnelEndpoint(authority: "tunnel.example.com:8443"))
        let yaml = try IstioRenderer.render(plan)
        _ = try IstioSchema.validate(yaml, schemaSet: schemaSet)
        let documents = try YAMLDocument.loadAll(yaml)
        let virtualService = try #require(documents.first { $0["kind"].string == "VirtualService" })
        let regex = try #require(virtualService["spec"]["http"][0]["match"][0]["headers"]["baggage"]["regex"].string)
        #expect(regex == (try HeaderMatch(baggage: "user=alice")).value)
    }
}
