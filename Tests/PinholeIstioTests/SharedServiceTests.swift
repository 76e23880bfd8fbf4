import PinholeCore
import PinholeIstio
import Testing

private let names = ["carol-9c1e07", "alice-3f9a2c", "bob-77aa01"]

/// Developer `index` on checkout.shop: their tunnel is NAME.tunnels.example.com:8080.
private func developer(_ index: Int, mode: IstioMode, version: IstioAPIVersion) throws -> SharedService.Developer {
    let name = names[index]
    var plan = try IstioPlan(
        mode: mode, service: "checkout", namespace: "shop", servicePort: 8080,
        headerMatch: HeaderMatch(name: "x-user", kind: .exact, value: String(name.prefix(while: { $0 != "-" }))),
        apiVersion: version, tunnel: TunnelEndpoint(authority: "\(name).tunnels.example.com:8080", scheme: .http))
    plan.ownership = ResourceOwnership(tunnel: "alice-3f9a2c", machine: "alice-laptop")
    return SharedService.Developer(tunnelName: name, plan: plan)
}

private func shared(_ modes: [IstioMode], version: IstioAPIVersion = .v1) throws -> SharedService {
    let developers = try modes.indices.map { try developer($0, mode: modes[$0], version: version) }
    let local = try #require(developers.first { $0.tunnelName == "alice-3f9a2c" } ?? developers.first)
    return SharedService(local: local.plan, developers: developers)
}

/// Every combination of modes for `count` developers.
private func combinations(_ count: Int) -> [[IstioMode]] {
    let modes: [IstioMode] = [.redirect, .route, .mirror]
    return (0..<count).reduce([[]]) { partial, _ in partial.flatMap { prefix in modes.map { prefix + [$0] } } }
}

@Suite("One VirtualService for several developers")
struct SharedServiceTests {
    @Test(arguments: [1, 2, 3], IstioAPIVersion.allCases)
    func oneRulePerDeveloperInNameOrderThenTheDefault(count: Int, version: IstioAPIVersion) throws {
        for modes in combinations(count) {
            let service = try shared(modes, version: version)
            let yaml = try IstioRenderer.render(service)
            let documents = try YAMLDocument.loadAll(yaml)
            let virtualServices = documents.filter { $0["kind"].string == "VirtualService" }
            try #require(virtualServices.count == 1, "\(modes): one VirtualService")
            let virtualService = virtualServices[0]
            #expect(virtualService["metadata"]["name"].string == "checkout")
            #expect(virtualService["spec"]["hosts"].strings == ["checkout"])
            for document in documents {
                #expect(document["apiVersion"].string == "networking.istio.io/\(version.rawValue)")
                #expect(document["metadata"]["annotations"]["pinhole.dev/tunnel"].string == "alice-3f9a2c")
            }
            if count == 1 {
                // Alone: exactly the single-developer resources.
                #expect(yaml == (try IstioRenderer.render(service.local)))
                continue
            }
            let sorted = service.developers
            #expect(sorted.map(\.tunnelName) == sorted.map(\.tunnelName).sorted())
            let rules = virtualService["spec"]["http"]
            #expect(rules.count == count + 1, "\(modes)")
            #expect(rules[count]["name"].string == "default" && rules[count]["match"].exists == false)
            #expect(
                virtualService["metadata"]["annotations"]["pinhole.dev/developers"].string
                    == sorted.map(\.tunnelName).joined(separator: ","))
            for (index, developer) in sorted.enumerated() {
                let rule = rules[index]
                let name = developer.tunnelName
                let user = String(name.prefix(while: { $0 != "-" }))
                #expect(rule["name"].string == "pinhole-\(name)", "\(modes)")
                // Every rule, mirror's too, takes only its developer's requests.
                #expect(rule["match"][0]["headers"]["x-user"]["exact"].string == user, "\(modes) \(name)")
                let entry = documents.first {
                    $0["kind"].string == "ServiceEntry" && $0["metadata"]["name"].string == "checkout-pinhole-\(name)"
                }
                switch developer.plan.mode {
                case .redirect:
                    #expect(rule["redirect"]["authority"].string == "\(name).tunnels.example.com")
                    #expect(entry == nil)
                case .route:
                    #expect(rule["route"][0]["destination"]["host"].string == "\(name).checkout.pinhole")
                    #expect(rule["rewrite"]["authority"].string == "\(name).tunnels.example.com:8080")
                    #expect(rule["retries"]["attempts"].int == 0)
                    #expect(entry?["spec"]["hosts"].strings == ["\(name).checkout.pinhole"])
                    #expect(entry?["spec"]["endpoints"][0]["address"].string == "\(name).tunnels.example.com")
                case .mirror:
                    #expect(rule["route"][0]["destination"]["host"].string == "checkout")
                    #expect(rule["mirror"]["host"].string == "\(name).checkout.pinhole")
                    #expect(rule["retries"]["attempts"].int == 0)
                    #expect(entry != nil)
                case .none:
                    Issue.record("no developer has mode none")
                }
            }
        }
    }

    @Test func everyDeveloperRendersTheSameFile() throws {
        let developers = try [0, 1, 2].map { try developer($0, mode: [.route, .mirror, .redirect][$0], version: .v1) }
        let fromAlice = try IstioRenderer.render(SharedService(local: developers[1].plan, developers: developers))
        let fromBob = try IstioRenderer.render(
            SharedService(local: developers[1].plan, developers: developers.reversed()))
        #expect(fromAlice == fromBob, "the order developers arrive in does not matter")
    }

    @Test(
        .enabled(if: IstioSchema.isAvailable), arguments: [1, 2, 3], IstioSchema.schemaSets)
    func passesIstiosSchema(count: Int, schemaSet: String) throws {
        // One validator run for every combination: each render is its own documents.
        var yaml = ""
        for version in IstioAPIVersion.allCases {
            for modes in combinations(count) {
                yaml += try IstioRenderer.render(shared(modes, version: version)) + "---\n"
            }
        }
        let report = try IstioSchema.validate(String(yaml.dropLast(4)), schemaSet: schemaSet)
        #expect(report.contains("valid:"))
        #expect(!report.contains("INVALID"))
    }
}
