/// Several developers debugging one service at once. Istio does not merge sidecar
/// VirtualServices for one host (istio/istio#36621, analyzer IST0109): a second one
/// named after the service would replace the first. So every developer's agent renders
/// the same single VirtualService, with one rule per developer.
public struct SharedService: Sendable, Equatable {
    public struct Developer: Sendable, Equatable {
        /// The developer's tunnel name: names their rule and their tunnel's ServiceEntry.
        public var tunnelName: String
        /// Their mode, match, tunnel and rule settings; service, namespace, port and API
        /// version are taken from `local`.
        public var plan: IstioPlan

        public init(tunnelName: String, plan: IstioPlan) {
            self.tunnelName = tunnelName
            self.plan = plan
        }
    }

    /// The plan of the agent that renders: the service's name, namespace, port, API
    /// version, and the ownership annotations.
    public var local: IstioPlan
    /// Everyone sharing the service, this agent's developer included.
    public var developers: [Developer]

    public init(local: IstioPlan, developers: [Developer]) {
        self.local = local
        self.developers = developers.sorted { $0.tunnelName < $1.tunnelName }
    }

    /// The annotation on the shared VirtualService that lists its developers' tunnels.
    public static let developersKey = "pinhole.dev/developers"
    /// Rule names: `pinhole-TUNNEL`.
    public static let rulePrefix = "pinhole-"
}

extension IstioRenderer {
    /// One VirtualService for the service with a rule per developer, in tunnel-name order,
    /// then the default route; before it, a ServiceEntry (and for https a DestinationRule)
    /// per developer whose mode needs one, named `S-pinhole-TUNNEL` for host
    /// `TUNNEL.S.pinhole`. Mirror rules carry their developer's match, so each developer
    /// receives only the copies of requests with it. With one developer this is exactly
    /// `render(_:)` of the local plan.
    public static func render(_ shared: SharedService) throws(IstioError) -> String {
        try serialize(resources(for: shared))
    }

    static func resources(for shared: SharedService) throws(IstioError) -> [IstioResource] {
        let local = shared.local
        guard shared.developers.count > 1 else {
            return try resources(for: local)
        }
        var entries: [IstioResource] = []
        var rules: [HTTPRoute] = []
        for developer in shared.developers {
            var plan = developer.plan
            plan.sharedTunnelName = developer.tunnelName
            plan.ownership = local.ownership
            guard var rule = tunnelRule(plan) else { continue }
            rule.name = SharedService.rulePrefix + developer.tunnelName
            if plan.mode == .mirror {
                rule.match = [HTTPMatchRequest(header: plan.headerMatch)]
            }
            if plan.mode != .redirect {
                entries += tunnelService(plan)
            }
            rules.append(rule)
        }
        rules.append(defaultRoute(local))
        var virtualService = virtualService(local, rules: rules)
        virtualService.annotations.append(
            (SharedService.developersKey, shared.developers.map(\.tunnelName).joined(separator: ",")))
        return entries + [virtualService]
    }
}
