import Foundation
import NIOConcurrencyHelpers
import PinholeAgent
import PinholeCore
import PinholeIstio

/// Writes the agent's Istio resources (and the matching restore file) once the tunnel
/// has an authority, so the developer only runs `kubectl apply -f`.
final class IstioFiles: Sendable {
    struct Written: Sendable {
        let resources: String
        let restore: String
        let summary: String
    }

    private let path: String
    private let makePlan: @Sendable (TunnelEndpoint) throws(IstioError) -> IstioPlan
    private let written = NIOLockedValueBox<Written?>(nil)

    init?(options: IstioOptions) {
        guard let path = options.resolvedOutputPath, let makePlan = options.planMaker() else { return nil }
        self.path = path
        self.makePlan = makePlan
    }

    var lastWritten: Written? { written.withLockedValue { $0 } }

    /// Renders and writes the files for `tunnel`; on failure prints why and returns nil.
    func write(for tunnel: TunnelInfo) -> Written? {
        let restorePath = path.hasSuffix(".yaml") ? String(path.dropLast(5)) + ".restore.yaml" : path + ".restore.yaml"
        do {
            let endpoint = try TunnelEndpoint(
                host: tunnel.host, port: tunnel.port, scheme: tunnel.url.hasPrefix("https") ? .https : .http)
            var plan = try makePlan(endpoint)
            plan.ownership = ResourceOwnership(tunnel: tunnel.name ?? tunnel.authority)
            try IstioRenderer.render(plan).write(toFile: path, atomically: true, encoding: .utf8)
            try IstioRenderer.renderRestore(plan).write(toFile: restorePath, atomically: true, encoding: .utf8)
            let summary: String
            switch plan.mode {
            case .redirect: summary = "redirect requests with \(plan.headerMatch) to the tunnel"
            case .route: summary = "route requests with \(plan.headerMatch) through the tunnel"
            case .mirror: summary = "mirror \(plan.mirrorPercent)% of \(plan.service)'s requests to the tunnel"
            case .none: summary = ""
            }
            let result = Written(resources: path, restore: restorePath, summary: summary)
            written.withLockedValue { $0 = result }
            return result
        } catch {
            Terminal.error("agent: could not write the Istio resources to \(path): \(error)")
            return nil
        }
    }
}
