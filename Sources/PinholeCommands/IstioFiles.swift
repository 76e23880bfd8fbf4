import Foundation
import NIOConcurrencyHelpers
import PinholeAgent
import PinholeCore
import PinholeIstio
import PinholeTunnel

/// Writes the agent's Istio resources (and the matching restore file) once the tunnel
/// has an authority, so the developer only runs `kubectl apply -f`.
final class IstioFiles: Sendable {
    struct Written: Sendable {
        let resources: String
        let restore: String
        let summary: String
        /// The other developers whose rules the file has, when several share the service.
        var otherDevelopers: [String] = []
    }

    private struct State {
        var written: Written?
        var tunnel: TunnelInfo?
        /// The developers last rendered (nil: only this one), to skip announcements that change nothing.
        var members: [ServiceMembers.Member]?
    }

    private let path: String
    private let makePlan: @Sendable (TunnelEndpoint) throws(IstioError) -> IstioPlan
    private let state = NIOLockedValueBox(State())
    private let writing = NIOLock()

    init?(options: IstioOptions) {
        guard let path = options.resolvedOutputPath, let makePlan = options.planMaker() else { return nil }
        self.path = path
        self.makePlan = makePlan
    }

    var lastWritten: Written? { state.withLockedValue { $0.written } }

    /// Renders and writes the files for `tunnel` (with the developers sharing its service,
    /// if the relay already said); on failure prints why and returns nil.
    func write(for tunnel: TunnelInfo) -> Written? {
        state.withLockedValue { $0.tunnel = tunnel }
        return writeLatest()
    }

    /// Renders and writes the files again for the developers the relay announced, if they
    /// changed; nil when nothing changed or the tunnel is not known yet (the announcement
    /// can overtake the tunnel's own event; `write(for:)` then uses it).
    func write(members announced: ServiceMembers) -> Written? {
        // Alone, the file is the single-developer one.
        let members = announced.members.count > 1 ? announced.members : nil
        let known = state.withLockedValue { state -> Bool in
            guard state.members != members else { return false }
            state.members = members
            return state.tunnel != nil
        }
        guard known else { return nil }
        return writeLatest()
    }

    /// Renders what the state says now, one writer at a time: the tunnel's event and the
    /// relay's announcement come on different threads, and whichever writes last must
    /// write both (else the single-developer file could overwrite the shared one).
    private func writeLatest() -> Written? {
        writing.withLock {
            let (tunnel, members) = state.withLockedValue { ($0.tunnel, $0.members) }
            guard let tunnel else { return nil }
            return write(for: tunnel, sharedWith: members)
        }
    }

    private func write(for tunnel: TunnelInfo, sharedWith members: [ServiceMembers.Member]?) -> Written? {
        let restorePath = path.hasSuffix(".yaml") ? String(path.dropLast(5)) + ".restore.yaml" : path + ".restore.yaml"
        do {
            let endpoint = try TunnelEndpoint(
                host: tunnel.host, port: tunnel.port, scheme: tunnel.url.hasPrefix("https") ? .https : .http)
            var plan = try makePlan(endpoint)
            plan.ownership = ResourceOwnership(tunnel: tunnel.name ?? tunnel.authority)
            var developers: [SharedService.Developer] = []
            for member in members ?? [] {
                do {
                    developers.append(try SharedService.Developer(member, local: plan))
                } catch {
                    Terminal.error("agent: left out tunnel \(member.tunnel.name)'s rule: \(error)")
                }
            }
            let yaml =
                developers.count > 1
                ? try IstioRenderer.render(SharedService(local: plan, developers: developers))
                : try IstioRenderer.render(plan)
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
            try IstioRenderer.renderRestore(plan).write(toFile: restorePath, atomically: true, encoding: .utf8)
            let summary: String
            switch plan.mode {
            case .redirect: summary = "redirect requests with \(plan.headerMatch) to the tunnel"
            case .route: summary = "route requests with \(plan.headerMatch) through the tunnel"
            case .mirror: summary = "mirror \(plan.mirrorPercent)% of \(plan.service)'s requests to the tunnel"
            case .none: summary = ""
            }
            let result = Written(
                resources: path, restore: restorePath, summary: summary,
                otherDevelopers: developers.count > 1
                    ? developers.map(\.tunnelName).filter { $0 != tunnel.name }.sorted() : [])
            state.withLockedValue { $0.written = result }
            return result
        } catch {
            Terminal.error("agent: could not write the Istio resources to \(path): \(error)")
            return nil
        }
    }
}
