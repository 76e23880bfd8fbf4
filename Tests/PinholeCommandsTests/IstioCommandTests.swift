import ArgumentParser
import PinholeCommands
import PinholeCore
import PinholeIstio
import Testing
import Yams

/// The documents of a YAML stream as dictionaries, typed the way the YAML resolver reads them.
private func documents(_ yaml: String) throws -> [[AnyHashable: Any]] {
    var sequence = try Yams.load_all(yaml: yaml)
    var result: [[AnyHashable: Any]] = []
    while let document = sequence.next() {
        result.append(try #require(document as? [AnyHashable: Any]))
    }
    if let error = sequence.error {
        throw error
    }
    return result
}

private func value(_ root: Any?, _ path: AnyHashable...) -> Any? {
    path.reduce(root) { node, key in
        if let index = key.base as? Int {
            guard let array = node as? [Any], array.indices.contains(index) else { return nil }
            return array[index]
        }
        return (node as? [AnyHashable: Any])?[key]
    }
}

private func command(_ arguments: [String]) throws -> IstioCommand {
    try #require(try IstioCommand.parseAsRoot(arguments) as? IstioCommand)
}

private func optionsError(_ arguments: [String]) -> String? {
    do {
        _ = try IstioOptions.parse(arguments)
        return nil
    } catch {
        return IstioOptions.message(for: error)
    }
}

@Suite("agent istio")
struct IstioCommandTests {
    @Test func rendersARedirectByDefault() throws {
        let yaml = try command(["--service", "checkout", "--namespace", "shop", "--authority", "tunnel.example.com"])
            .render()
        let docs = try documents(yaml)
        #expect(docs.count == 1)
        let rules = value(docs[0], "spec", "http")
        #expect(value(docs[0], "kind") as? String == "VirtualService")
        #expect(value(docs[0], "apiVersion") as? String == "networking.istio.io/v1")
        #expect(value(rules, 0, "match", 0, "headers", "x-user", "exact") as? String == "debug")
        #expect(value(rules, 0, "redirect", "authority") as? String == "tunnel.example.com")
        #expect(value(rules, 0, "redirect", "port") == nil)
        #expect(value(rules, 0, "redirect", "scheme") as? String == "http")
        #expect(value(rules, 0, "redirect", "redirectCode") as? Int == 307)
        #expect(value(rules, 1, "route", 0, "destination", "host") as? String == "checkout")
        #expect(value(rules, 1, "route", 0, "destination", "port", "number") as? Int == 3000)
    }

    @Test func passesEveryFlagThrough() throws {
        let yaml = try command([
            "--istio", "route", "--service", "checkout", "--namespace", "shop", "--service-port", "8080",
            "--match-header", "X-Team^=blue", "--istio-api", "v1alpha3",
            "--authority", "203.0.113.7:8080", "--scheme", "http",
        ]).render()
        let docs = try documents(yaml)
        #expect(docs.map { value($0, "kind") as? String } == ["ServiceEntry", "VirtualService"])
        #expect(docs.allSatisfy { value($0, "apiVersion") as? String == "networking.istio.io/v1alpha3" })
        #expect(value(docs[0], "spec", "resolution") as? String == "STATIC")
        let rules = value(docs[1], "spec", "http")
        #expect(value(rules, 0, "match", 0, "headers", "x-team", "prefix") as? String == "blue")
        #expect(value(rules, 0, "rewrite", "authority") as? String == "203.0.113.7:8080")
        #expect(value(rules, 0, "route", 0, "destination", "host") as? String == "checkout.pinhole")
        #expect(value(rules, 1, "route", 0, "destination", "port", "number") as? Int == 8080)
    }

    @Test func rendersAMirror() throws {
        let yaml = try command([
            "--istio", "mirror", "--mirror-percent", "12.5", "--service", "checkout",
            "--authority", "tunnel.example.com:8443", "--scheme", "https",
        ]).render()
        let docs = try documents(yaml)
        #expect(docs.map { value($0, "kind") as? String } == ["ServiceEntry", "DestinationRule", "VirtualService"])
        let rule = value(docs[2], "spec", "http", 0)
        #expect(value(rule, "mirror", "host") as? String == "checkout.pinhole")
        #expect(value(rule, "mirror", "port", "number") as? Int == 8443)
        #expect(value(rule, "mirrorPercentage", "value") as? Double == 12.5)
    }

    @Test func redirectCodeFlag() throws {
        let yaml = try command(["--service", "checkout", "--redirect-code", "302", "--authority", "t.example.com"])
            .render()
        #expect(value(try documents(yaml)[0], "spec", "http", 0, "redirect", "redirectCode") as? Int == 302)
    }

    @Test func restoreNeedsNoTunnel() throws {
        let yaml = try command(["--service", "checkout", "--namespace", "shop", "--restore", "--istio-api", "v1beta1"])
            .render()
        let docs = try documents(yaml)
        #expect(docs.count == 1)
        #expect(value(docs[0], "apiVersion") as? String == "networking.istio.io/v1beta1")
        #expect((value(docs[0], "spec", "http") as? [Any])?.count == 1)
        #expect(value(docs[0], "spec", "http", 0, "name") as? String == "default")
        #expect(value(docs[0], "spec", "http", 0, "route", 0, "destination", "host") as? String == "checkout")
    }

    @Test(
        arguments: [
            (["--authority", "tunnel.example.com"], "--service NAME is required"),
            (["--service", "checkout"], "--authority HOST[:PORT] is required"),
            (["--service", "checkout", "--istio", "none", "--authority", "t.example.com"], "prints nothing"),
            (["--service", "checkout", "--authority", "https://t.example.com"], "it is a URL"),
            (["--service", "checkout", "--authority", "t.example.com:99999"], "not a port number"),
            (["--service", "checkout", "--authority", "t.example.com", "--scheme", "ftp"], "ftp"),
            (["--service", "My_Service", "--authority", "t.example.com"], "'My_Service'"),
        ]
    )
    func commandRefusesWithAReadableMessage(arguments: [String], fragment: String) throws {
        let message = try #require(parseError(IstioCommand.self, arguments))
        #expect(message.contains(fragment), "\(message)")
    }

    @Test func helpExplainsEachMode() {
        let help = IstioCommand.helpMessage(columns: 200)
        for mode in IstioMode.allCases {
            #expect(help.contains(mode.rawValue), "help lacks \(mode)")
            #expect(help.contains("- " + mode.defaultValueDescription), "help lacks the sentence for \(mode)")
        }
        for text in ["kubectl apply -f -", "--restore", "x-user=debug", "--authority <host[:port]>"] {
            #expect(help.contains(text), "help lacks \(text)")
        }
    }
}

@Suite("Istio options")
struct IstioOptionsTests {
    @Test func nothingWithoutAService() throws {
        let options = try IstioOptions.parse([])
        #expect(options.resolvedMode == .none)
        #expect(options.resolvedOutputPath == nil)
        #expect(try options.plan(tunnel: TunnelEndpoint(host: "t.example.com")) == nil)
    }

    @Test func redirectWithAService() throws {
        let options = try IstioOptions.parse(["--service", "checkout"])
        #expect(options.resolvedMode == .redirect)
        #expect(options.resolvedOutputPath == "pinhole-checkout.yaml")
        let tunnel = try TunnelEndpoint(authority: "t.example.com:8443")
        let plan = try #require(try options.plan(tunnel: tunnel))
        #expect(plan == (try IstioPlan(mode: .redirect, service: "checkout", tunnel: tunnel)))
    }

    @Test func everyOptionReachesThePlan() throws {
        let options = try IstioOptions.parse([
            "--istio", "mirror", "--service", "checkout", "--namespace", "shop", "--service-port", "8080",
            "--mirror-percent", "5", "--istio-api", "v1beta1", "--istio-out", "out.yaml",
        ])
        #expect(options.resolvedOutputPath == "out.yaml")
        let tunnel = try TunnelEndpoint(authority: "203.0.113.7:8080", scheme: .http)
        let plan = try #require(try options.plan(tunnel: tunnel))
        #expect(plan.mode == .mirror)
        #expect(plan.namespace == "shop")
        #expect(plan.servicePort == 8080)
        #expect(plan.mirrorPercent == 5)
        #expect(plan.apiVersion == .v1beta1)
        #expect(plan.tunnel == tunnel)
        let routeOptions = try IstioOptions.parse(["--istio", "route", "--service", "c", "--match-header", "a~b.*"])
        let route = try #require(try routeOptions.plan(tunnel: tunnel))
        #expect(route.headerMatch == (try HeaderMatch(name: "a", kind: .regex, value: "b.*")))
    }

    @Test(
        arguments: [
            (["--istio", "redirect"], "--istio redirect needs --service NAME"),
            (["--istio", "mirror"], "--istio mirror needs --service NAME"),
            (["--service", "My_Service"], "--service: service 'My_Service' is not valid"),
            (["--service", "checkout", "--namespace=-bad"], "--namespace: namespace '-bad' is not valid"),
            (["--service", String(repeating: "s", count: 64)], "64 characters"),
            (["--service", "checkout", "--service-port", "0"], "--service-port: service port 0"),
            (["--service", "checkout", "--match-header", "x-user"], "--match-header: header match 'x-user'"),
            (["--service", "checkout", "--match-header", "x-user~(a"], "does not compile"),
            (["--service", "checkout", "--redirect-code", "200"], "redirect code 200"),
            (["--service", "c", "--istio", "mirror", "--mirror-percent", "0"], "mirror percentage 0"),
            (["--service", "c", "--istio", "mirror", "--mirror-percent", "101"], "mirror percentage 101"),
            (["--service", "c", "--istio", "none", "--match-header", "a=b"], "no effect with --istio none"),
            (["--service", "c", "--istio", "route", "--redirect-code", "302"], "no effect with --istio route"),
            (["--service", "c", "--mirror-percent", "50"], "no effect with --istio redirect"),
            (["--istio-out", "x.yaml"], "nothing to write"),
            (["--service", "c", "--istio", "sideways"], "sideways"),
            (["--service", "c", "--istio-api", "v2"], "v2"),
            (["--service", "c", "--debug-timeout", "5m"], "no effect with --istio redirect"),
            (["--service", "c", "--match-baggage", "u=a", "--match-header", "a=b"], "alternatives"),
            (["--service", "c", "--match-baggage", "user"], "--match-baggage: header match 'user'"),
            (["--service", "c", "--istio", "route", "--debug-timeout", "0s"], "shorter than the 1ms"),
            (["--service", "c", "--istio", "route", "--debug-timeout", "5"], "'5' is not a duration"),
            (["--service", "c", "--istio", "mirror", "--debug-retries=-1"], "--debug-retries -1"),
        ]
    )
    func refusesWithAReadableMessage(arguments: [String], fragment: String) throws {
        let message = try #require(optionsError(arguments))
        #expect(message.contains(fragment), "\(message)")
    }

    @Test func debugRuleFlagsReachThePlan() throws {
        let options = try IstioOptions.parse([
            "--service", "c", "--istio", "route", "--debug-timeout", "10m", "--debug-retries", "1",
        ])
        let plan = try #require(try options.plan(tunnel: TunnelEndpoint(authority: "t.example.com")))
        #expect(plan.debugRules == (try DebugRulePolicy(timeout: "10m", retries: 1)))
        let defaults = try #require(
            try IstioOptions.parse(["--service", "c", "--istio", "mirror"])
                .plan(tunnel: TunnelEndpoint(authority: "t.example.com")))
        #expect(defaults.debugRules == .breakpointSafe)
    }

    @Test func matchBaggageBecomesTheBaggageRegex() throws {
        let options = try IstioOptions.parse(["--service", "c", "--istio", "route", "--match-baggage", "user=alice"])
        let plan = try #require(try options.plan(tunnel: TunnelEndpoint(authority: "t.example.com")))
        #expect(plan.headerMatch == (try HeaderMatch(baggage: "user=alice")))
    }
}
