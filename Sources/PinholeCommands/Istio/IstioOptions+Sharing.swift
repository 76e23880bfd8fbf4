import PinholeIstio
import PinholeTunnel

extension IstioOptions {
    /// What the agent declares to the relay so that developers on the same service share
    /// it: its mode, match and rule settings. Nil without a service or Istio resources.
    /// Call after `validate()`.
    func serviceShare() throws(IstioError) -> ServiceShare? {
        let mode = resolvedMode
        guard mode != .none, let service else { return nil }
        let match = try Self.headerMatch(header: matchHeader, baggage: matchBaggage)
        return ServiceShare(
            service: service, namespace: namespace, mode: mode.rawValue,
            match: HeaderCondition(
                name: match.name, kind: HeaderCondition.Kind(rawValue: match.kind.rawValue) ?? .exact,
                value: match.value),
            redirectCode: mode == .redirect ? redirectCode ?? IstioPlan.defaultRedirectCode : nil,
            mirrorPercent: mode == .mirror ? mirrorPercent ?? 100 : nil,
            timeout: debugTimeout, retries: debugRetries)
    }
}

extension SharedService.Developer {
    /// Another developer's rule, from what the relay announced, rendered with this
    /// agent's service, namespace, port and API version (`local`).
    init(_ member: ServiceMembers.Member, local: IstioPlan) throws(IstioError) {
        let share = member.share
        guard let mode = IstioMode(rawValue: share.mode), mode != .none,
            let kind = HeaderMatch.Kind(rawValue: share.match.kind.rawValue)
        else {
            throw .invalidHeaderMatch(input: share.match.description, reason: "mode '\(share.mode)' is not known")
        }
        let tunnel = member.tunnel
        var plan = try IstioPlan(
            mode: mode, service: local.service, namespace: local.namespace, servicePort: local.servicePort,
            headerMatch: HeaderMatch(name: share.match.name, kind: kind, value: share.match.value),
            redirectCode: share.redirectCode ?? IstioPlan.defaultRedirectCode,
            mirrorPercent: share.mirrorPercent ?? 100, apiVersion: local.apiVersion,
            // The service is one: its protocol is the local agent's (a gRPC service stays GRPC).
            serviceProtocol: local.serviceProtocol,
            tunnel: TunnelEndpoint(
                host: tunnel.host, port: tunnel.port, scheme: tunnel.scheme == "https" ? .https : .http))
        plan.debugRules = try DebugRulePolicy(timeout: share.timeout, retries: share.retries ?? 0)
        self.init(tunnelName: tunnel.name, plan: plan)
    }
}
