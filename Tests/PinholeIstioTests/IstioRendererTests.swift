import PinholeCore
import PinholeIstio
import Testing
import Yams

// Every test renders, parses the YAML back with Yams, and checks the fields Istio acts on.

private let modesWithResources: [IstioMode] = [.redirect, .mirror, .route]

private func tunnel(
    _ authority: String = "tunnel.example.com:8443",
    _ scheme: TunnelEndpoint.Scheme = .https
) throws -> TunnelEndpoint {
    try TunnelEndpoint(authority: authority, scheme: scheme)
}

private func plan(
    _ mode: IstioMode,
    version: IstioAPIVersion = .v1,
    tunnel: TunnelEndpoint,
    header: HeaderMatch = .default,
    redirectCode: Int = 307,
    mirrorPercent: Double = 100
) throws -> IstioPlan {
    try IstioPlan(
        mode: mode,
        service: "checkout",
        namespace: "shop",
        servicePort: 8080,
        headerMatch: header,
        redirectCode: redirectCode,
        mirrorPercent: mirrorPercent,
        apiVersion: version,
        tunnel: tunnel
    )
}

private func render(_ plan: IstioPlan) throws -> [YAMLDocument] {
    try YAMLDocument.loadAll(IstioRenderer.render(plan))
}

private func only(_ documents: [YAMLDocument], kind: String) throws -> YAMLDocument {
    let matching = documents.filter { $0["kind"].string == kind }
    try #require(matching.count == 1, "expected one \(kind), got \(matching.count)")
    return matching[0]
}

private func rules(_ documents: [YAMLDocument]) throws -> YAMLDocument {
    try only(documents, kind: "VirtualService")["spec"]["http"]
}

private func expectDefaultRoute(_ rule: YAMLDocument) {
    #expect(rule["name"].string == "default")
    #expect(rule["match"].exists == false)
    #expect(rule["route"].count == 1)
    #expect(rule["route"][0]["destination"]["host"].string == "checkout")
    #expect(rule["route"][0]["destination"]["port"]["number"].int == 8080)
}

@Suite("Istio resources")
struct IstioRendererTests {
    @Test(arguments: modesWithResources, IstioAPIVersion.allCases)
    func documentsCarryVersionNamespaceAndLabel(mode: IstioMode, version: IstioAPIVersion) throws {
        let documents = try render(plan(mode, version: version, tunnel: tunnel()))
        let kinds = documents.map { $0["kind"].string ?? "?" }
        let expected = mode == .redirect ? ["VirtualService"] : ["ServiceEntry", "DestinationRule", "VirtualService"]
        #expect(kinds == expected)
        for document in documents {
            #expect(document["apiVersion"].string == "networking.istio.io/\(version.rawValue)")
            #expect(document["metadata"]["namespace"].string == "shop")
            #expect(document["metadata"]["labels"]["app.kubernetes.io/managed-by"].string == "pinhole")
        }
        let virtualService = try only(documents, kind: "VirtualService")
        #expect(virtualService["metadata"]["name"].string == "checkout")
        #expect(virtualService["spec"]["hosts"].strings == ["checkout"])
    }

    @Test(arguments: modesWithResources)
    func plainHTTPTunnelNeedsNoDestinationRule(mode: IstioMode) throws {
        let documents = try render(plan(mode, tunnel: tunnel("tunnel.example.com:8080", .http)))
        let kinds = documents.map { $0["kind"].string ?? "?" }
        #expect(kinds == (mode == .redirect ? ["VirtualService"] : ["ServiceEntry", "VirtualService"]))
    }

    // MARK: redirect

    @Test(arguments: IstioAPIVersion.allCases)
    func redirectSendsMatchingRequestsToTheTunnel(version: IstioAPIVersion) throws {
        let http = try rules(render(plan(.redirect, version: version, tunnel: tunnel("tunnel.example.com"))))
        #expect(http.count == 2)
        let debug = http[0]
        #expect(debug["name"].string == "pinhole-debug")
        #expect(debug["match"].count == 1)
        #expect(debug["match"][0]["headers"]["x-user"]["exact"].string == "debug")
        #expect(debug["route"].exists == false)
        let redirect = debug["redirect"]
        #expect(redirect["authority"].string == "tunnel.example.com")
        #expect(redirect["port"].exists == false, "443 is https's default and must be left out")
        #expect(redirect["scheme"].string == "https")
        #expect(redirect["redirectCode"].int == 307)
        expectDefaultRoute(http[1])
    }

    @Test(
        arguments: [
            ("tunnel.example.com:8443", TunnelEndpoint.Scheme.https, 8443 as Int?),
            ("tunnel.example.com:80", .https, 80),
            ("tunnel.example.com:8080", .http, 8080),
            ("tunnel.example.com:80", .http, nil),
            ("tunnel.example.com", .http, nil),
            ("tunnel.example.com:443", .http, 443),
        ]
    )
    func redirectNamesOnlyANonDefaultPort(authority: String, scheme: TunnelEndpoint.Scheme, port: Int?) throws {
        let redirect = try rules(render(plan(.redirect, tunnel: tunnel(authority, scheme))))[0]["redirect"]
        #expect(redirect["authority"].string == "tunnel.example.com")
        #expect(redirect["port"].int == port)
        #expect(redirect["port"].exists == (port != nil))
        #expect(redirect["scheme"].string == scheme.rawValue)
    }

    @Test(arguments: IstioPlan.supportedRedirectCodes)
    func redirectCodeCanBeChosen(code: Int) throws {
        let redirect = try rules(render(plan(.redirect, tunnel: tunnel(), redirectCode: code)))[0]["redirect"]
        #expect(redirect["redirectCode"].int == code)
    }

    // MARK: header matches

    @Test(
        arguments: ["x-user=debug", "x-user^=dev-", "x-user~^dev-.*", "X-Team=Blue Team"],
        [IstioMode.redirect, .route]
    )
    func headerMatchBecomesAStringMatch(text: String, mode: IstioMode) throws {
        let match = try HeaderMatch(parsing: text)
        let headers = try rules(render(plan(mode, tunnel: tunnel(), header: match)))[0]["match"][0]["headers"]
        #expect(headers.keys == [match.name])
        #expect(headers[match.name].keys == [match.kind.rawValue])
        #expect(headers[match.name][match.kind.rawValue].string == match.value)
    }

    @Test(arguments: ["true", "y", "N", "on", "307", "1e3", "0x1F", "null", "~", "a: b", "#x", "'q'", "- x", "*a"])
    func headerValuesThatLookLikeOtherTypesStayStrings(value: String) throws {
        let match = try HeaderMatch(name: "x-flag", kind: .exact, value: value)
        let headers = try rules(render(plan(.redirect, tunnel: tunnel(), header: match)))[0]["match"][0]["headers"]
        #expect(headers["x-flag"]["exact"].string == value)
    }

    // MARK: route

    @Test(arguments: IstioAPIVersion.allCases)
    func routeRewritesTheAuthorityAndRoutesToTheTunnelHost(version: IstioAPIVersion) throws {
        let http = try rules(render(plan(.route, version: version, tunnel: tunnel())))
        #expect(http.count == 2)
        let debug = http[0]
        #expect(debug["name"].string == "pinhole-debug")
        #expect(debug["match"][0]["headers"]["x-user"]["exact"].string == "debug")
        #expect(debug["redirect"].exists == false)
        #expect(debug["rewrite"]["authority"].string == "tunnel.example.com:8443")
        #expect(debug["route"].count == 1)
        #expect(debug["route"][0]["destination"]["host"].string == "checkout.pinhole")
        #expect(debug["route"][0]["destination"]["port"]["number"].int == 8443)
        expectDefaultRoute(http[1])
    }

    @Test func routeAuthorityLeavesOutTheDefaultPort() throws {
        let debug = try rules(render(plan(.route, tunnel: tunnel("tunnel.example.com"))))[0]
        #expect(debug["rewrite"]["authority"].string == "tunnel.example.com")
        #expect(debug["route"][0]["destination"]["port"]["number"].int == 443)
    }

    // MARK: mirror

    @Test(arguments: IstioAPIVersion.allCases)
    func mirrorCopiesRequestsToTheTunnelHost(version: IstioAPIVersion) throws {
        let http = try rules(render(plan(.mirror, version: version, tunnel: tunnel())))
        #expect(http.count == 1)
        let rule = http[0]
        #expect(rule["name"].string == "pinhole-mirror")
        #expect(rule["match"].exists == false)
        #expect(rule["route"][0]["destination"]["host"].string == "checkout")
        #expect(rule["route"][0]["destination"]["port"]["number"].int == 8080)
        #expect(rule["mirror"]["host"].string == "checkout.pinhole")
        #expect(rule["mirror"]["port"]["number"].int == 8443)
        #expect(rule["mirrorPercentage"]["value"].number == 100)
        #expect(rule.keys.isDisjoint(with: ["mirrorPercent", "mirror_percent", "mirrors"]))
    }

    @Test(arguments: zip([100, 12.5, 0.0001, 33.33333, 99.99999], [100, 12.5, 0.0001, 33.3333, 100]))
    func mirrorPercentageIsWrittenAsADecimal(percent: Double, written: Double) throws {
        let yaml = try IstioRenderer.render(plan(.mirror, tunnel: tunnel(), mirrorPercent: percent))
        let rule = try rules(YAMLDocument.loadAll(yaml))[0]
        #expect(rule["mirrorPercentage"]["value"].number == written)
        #expect(!yaml.contains("e+") && !yaml.contains("e-0"), "exponent notation reads as a string in YAML 1.1")
    }

    // MARK: ServiceEntry and DestinationRule

    @Test(arguments: [IstioMode.mirror, .route], IstioAPIVersion.allCases)
    func namedTunnelIsAServiceEntryResolvedByDNS(mode: IstioMode, version: IstioAPIVersion) throws {
        let entry = try only(render(plan(mode, version: version, tunnel: tunnel())), kind: "ServiceEntry")
        #expect(entry["metadata"]["name"].string == "checkout-pinhole")
        let spec = entry["spec"]
        #expect(spec["hosts"].strings == ["checkout.pinhole"])
        #expect(spec["location"].string == "MESH_EXTERNAL")
        #expect(spec["resolution"].string == "DNS")
        #expect(spec["endpoints"].count == 1)
        #expect(spec["endpoints"][0]["address"].string == "tunnel.example.com")
        #expect(spec["ports"].count == 1)
        #expect(spec["ports"][0]["number"].int == 8443)
        #expect(spec["ports"][0]["name"].string == "https")
        #expect(spec["ports"][0]["protocol"].string == "HTTPS")
    }

    @Test(arguments: [IstioMode.mirror, .route], IstioAPIVersion.allCases)
    func ipTunnelIsAStaticServiceEntry(mode: IstioMode, version: IstioAPIVersion) throws {
        let documents = try render(plan(mode, version: version, tunnel: tunnel("203.0.113.7:8080", .http)))
        let spec = try only(documents, kind: "ServiceEntry")["spec"]
        #expect(spec["resolution"].string == "STATIC")
        #expect(spec["endpoints"][0]["address"].string == "203.0.113.7")
        #expect(spec["ports"][0]["number"].int == 8080)
        #expect(spec["ports"][0]["name"].string == "http")
        #expect(spec["ports"][0]["protocol"].string == "HTTP")
        #expect(!documents.contains { $0["kind"].string == "DestinationRule" })
    }

    @Test(arguments: [IstioMode.mirror, .route])
    func httpsTunnelGetsTLSOriginationWithItsName(mode: IstioMode) throws {
        let rule = try only(render(plan(mode, tunnel: tunnel())), kind: "DestinationRule")
        #expect(rule["metadata"]["name"].string == "checkout-pinhole")
        #expect(rule["spec"]["host"].string == "checkout.pinhole")
        #expect(rule["spec"]["trafficPolicy"]["tls"]["mode"].string == "SIMPLE")
        #expect(rule["spec"]["trafficPolicy"]["tls"]["sni"].string == "tunnel.example.com")
    }

    @Test func httpsTunnelByIPSendsNoSNI() throws {
        let rule = try only(render(plan(.route, tunnel: tunnel("203.0.113.7:8443"))), kind: "DestinationRule")
        #expect(rule["spec"]["trafficPolicy"]["tls"]["mode"].string == "SIMPLE")
        #expect(rule["spec"]["trafficPolicy"]["tls"]["sni"].exists == false)
    }

    @Test func ipv6TunnelIsBracketedInAuthoritiesOnly() throws {
        let address = try tunnel("[2001:db8::1]:8443")
        let redirect = try rules(render(plan(.redirect, tunnel: address)))[0]["redirect"]
        #expect(redirect["authority"].string == "[2001:db8::1]")
        #expect(redirect["port"].int == 8443)
        let documents = try render(plan(.route, tunnel: address))
        #expect(try rules(documents)[0]["rewrite"]["authority"].string == "[2001:db8::1]:8443")
        let entry = try only(documents, kind: "ServiceEntry")["spec"]
        #expect(entry["resolution"].string == "STATIC")
        #expect(entry["endpoints"][0]["address"].string == "2001:db8::1")
    }

    // MARK: restore, none, output shape

    @Test(arguments: modesWithResources, IstioAPIVersion.allCases)
    func restorePutsOnlyThePlainRouteBack(mode: IstioMode, version: IstioAPIVersion) throws {
        let yaml = try IstioRenderer.renderRestore(plan(mode, version: version, tunnel: tunnel()))
        let documents = try YAMLDocument.loadAll(yaml)
        #expect(documents.count == 1)
        let virtualService = try only(documents, kind: "VirtualService")
        #expect(virtualService["apiVersion"].string == version.apiVersion)
        #expect(virtualService["metadata"]["name"].string == "checkout")
        #expect(virtualService["metadata"]["namespace"].string == "shop")
        #expect(virtualService["spec"]["hosts"].strings == ["checkout"])
        #expect(virtualService["spec"]["http"].count == 1)
        expectDefaultRoute(virtualService["spec"]["http"][0])
        let withoutPlan = try IstioRenderer.renderRestore(
            service: "checkout",
            namespace: "shop",
            servicePort: 8080,
            apiVersion: version
        )
        #expect(withoutPlan == yaml)
    }

    @Test func restoreChecksItsNames() {
        #expect(throws: IstioError.self) { try IstioRenderer.renderRestore(service: "My_Service") }
        #expect(throws: IstioError.self) { try IstioRenderer.renderRestore(service: "checkout", namespace: "-bad") }
    }

    @Test func noneRendersNothing() throws {
        let none = try plan(.none, tunnel: tunnel())
        #expect(throws: IstioError.nothingToRender) { try IstioRenderer.render(none) }
    }

    @Test(arguments: modesWithResources)
    func outputIsDeterministicAndOrderedLikeIstioDocs(mode: IstioMode) throws {
        let rendered = try plan(mode, tunnel: tunnel())
        let yaml = try IstioRenderer.render(rendered)
        #expect(try IstioRenderer.render(rendered) == yaml)
        #expect(yaml.hasPrefix("apiVersion: networking.istio.io/v1\n"))
        var nodes = try Yams.compose_all(yaml: yaml)
        var count = 0
        while let node = nodes.next() {
            count += 1
            let keys = node.mapping.map { Array($0.keys.compactMap(\.string)) }
            #expect(keys == ["apiVersion", "kind", "metadata", "spec"])
        }
        #expect(count == (mode == .redirect ? 1 : 3))
        #expect(yaml.split(separator: "\n---\n").count == count)
    }
}
