import Foundation
import PinholeCore
import PinholeIstio
import Testing

@Suite("Ownership annotations")
struct OwnershipTests {
    private static let made = Date(timeIntervalSince1970: 1_796_608_162)  // 2026-12-07T01:49:22Z

    private func plan(_ mode: IstioMode, version: IstioAPIVersion = .v1) throws -> IstioPlan {
        var plan = try IstioPlan(
            mode: mode, service: "checkout", namespace: "shop", apiVersion: version,
            tunnel: TunnelEndpoint(authority: "alice-3f9a2c.tunnels.example.com:8443"))
        plan.ownership = ResourceOwnership(
            tunnel: "alice-3f9a2c", machine: "alice-laptop", created: Self.made, agentVersion: "0.1.0")
        return plan
    }

    @Test(arguments: [IstioMode.redirect, .route, .mirror], IstioAPIVersion.allCases)
    func everyResourceSaysWhoWroteIt(mode: IstioMode, version: IstioAPIVersion) throws {
        let plan = try plan(mode, version: version)
        let documents =
            try YAMLDocument.loadAll(IstioRenderer.render(plan))
            + YAMLDocument.loadAll(IstioRenderer.renderRestore(plan))
        #expect(documents.count >= 2)
        for document in documents {
            let annotations = document["metadata"]["annotations"]
            #expect(annotations["pinhole.dev/tunnel"].string == "alice-3f9a2c")
            #expect(annotations["pinhole.dev/machine"].string == "alice-laptop")
            // A string, as Kubernetes requires, not a YAML timestamp.
            #expect(annotations["pinhole.dev/created"].string == "2026-12-07T01:49:22Z")
            #expect(annotations["pinhole.dev/agent-version"].string == "0.1.0")
        }
    }

    @Test func defaultsAreThisMachineNowAndThisVersion() {
        let before = Date()
        let ownership = ResourceOwnership(tunnel: nil)
        #expect(ownership.machine == ProcessInfo.processInfo.hostName)
        #expect(ownership.agentVersion == PinholeVersion.current)
        #expect(ownership.created >= before.addingTimeInterval(-1))
        #expect(ownership.createdText.hasSuffix("Z"))
    }

    @Test func restoreWithoutATunnelLeavesOnlyThatOut() throws {
        let yaml = try IstioRenderer.renderRestore(
            service: "checkout", ownership: ResourceOwnership(tunnel: nil, machine: "m", created: Self.made))
        let annotations = try YAMLDocument.loadAll(yaml)[0]["metadata"]["annotations"]
        #expect(annotations.keys == ["pinhole.dev/machine", "pinhole.dev/created", "pinhole.dev/agent-version"])
    }

    @Test(
        .enabled(if: IstioSchema.isAvailable), arguments: [IstioMode.redirect, .route, .mirror], IstioSchema.schemaSets)
    func annotatedResourcesPassIstiosSchema(mode: IstioMode, schemaSet: String) throws {
        let plan = try plan(mode)
        _ = try IstioSchema.validate(IstioRenderer.render(plan), schemaSet: schemaSet)
        _ = try IstioSchema.validate(IstioRenderer.renderRestore(plan), schemaSet: schemaSet)
    }
}
