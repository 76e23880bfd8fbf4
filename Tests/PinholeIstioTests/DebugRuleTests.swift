import PinholeCore
import PinholeIstio
import Testing

private func plan(_ mode: IstioMode, version: IstioAPIVersion = .v1) throws -> IstioPlan {
    try IstioPlan(
        mode: mode, service: "checkout", namespace: "shop", servicePort: 8080, apiVersion: version,
        tunnel: TunnelEndpoint(authority: "tunnel.example.com:8443"))
}

private func tunnelRule(_ plan: IstioPlan) throws -> YAMLDocument {
    let documents = try YAMLDocument.loadAll(IstioRenderer.render(plan))
    let virtualService = try #require(documents.first { $0["kind"].string == "VirtualService" })
    return virtualService["spec"]["http"][0]
}

@Suite("Debug rules: no retries, no timeout")
struct DebugRuleTests {
    @Test(arguments: [IstioMode.route, .mirror], IstioAPIVersion.allCases)
    func tunnelRulesTurnRetriesOffAndSetNoTimeout(mode: IstioMode, version: IstioAPIVersion) throws {
        let rule = try tunnelRule(plan(mode, version: version))
        #expect(rule["retries"]["attempts"].int == 0)
        #expect(rule["retries"].keys == ["attempts"])
        // Absent is Istio's "disabled"; `0s` would be refused by the CRD.
        #expect(rule["timeout"].exists == false)
    }

    @Test func redirectRuleNeedsNeither() throws {
        let rule = try tunnelRule(plan(.redirect))
        #expect(rule["redirect"].exists)
        #expect(rule["retries"].exists == false)
        #expect(rule["timeout"].exists == false)
    }

    @Test(arguments: [IstioMode.route, .mirror])
    func flagsOverrideThem(mode: IstioMode) throws {
        var plan = try plan(mode)
        plan.debugRules = try DebugRulePolicy(timeout: "5m", retries: 2)
        let rule = try tunnelRule(plan)
        #expect(rule["timeout"].string == "5m")
        #expect(rule["retries"]["attempts"].int == 2)
    }

    @Test(arguments: ["5m", "1m30s", "500ms", "1.5h", "1ms"])
    func goDurationsAreAccepted(text: String) throws {
        #expect(try DebugRulePolicy(timeout: text).timeout == text)
    }

    @Test func zeroAndGarbageAreRefusedWithTheReason() {
        #expect(throws: IstioError.durationTooShort(flag: "--debug-timeout", value: "0s")) {
            try DebugRulePolicy(timeout: "0s")
        }
        #expect(throws: IstioError.invalidDuration(flag: "--debug-timeout", value: "5 minutes")) {
            try DebugRulePolicy(timeout: "5 minutes")
        }
        #expect(throws: IstioError.invalidDuration(flag: "--debug-timeout", value: "30")) {
            try DebugRulePolicy(timeout: "30")
        }
        #expect(throws: IstioError.retriesOutOfRange(-1)) { try DebugRulePolicy(retries: -1) }
    }

    @Test(.enabled(if: IstioSchema.isAvailable), arguments: IstioSchema.schemaSets)
    func istiosSchemaRefusesZeroTimeoutWhichIsWhyItIsLeftOut(schemaSet: String) throws {
        let yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: checkout, namespace: shop}
            spec:
              hosts: [checkout]
              http:
              - name: pinhole-debug
                timeout: 0s
                route: [{destination: {host: checkout, port: {number: 8080}}}]
            """
        let error = try #require(throws: IstioSchema.Invalid.self) {
            try IstioSchema.validate(yaml, schemaSet: schemaSet)
        }
        #expect(error.description.contains("greater than 1ms"))
    }

    @Test(.enabled(if: IstioSchema.isAvailable), arguments: [IstioMode.route, .mirror], IstioSchema.schemaSets)
    func overriddenRulesPassIstiosSchema(mode: IstioMode, schemaSet: String) throws {
        var plan = try plan(mode)
        plan.debugRules = try DebugRulePolicy(timeout: "1m30s", retries: 3)
        _ = try IstioSchema.validate(IstioRenderer.render(plan), schemaSet: schemaSet)
    }
}
