import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PinholeAgent
import PinholeCore
import PinholeIstio
import PinholeTunnel

/// Turns agent events into what the person (or a script) reads: a short header, then
/// one line per request, like ngrok's console; or JSON lines with `--log-format json`.
final class AgentOutput: Sendable {
    enum Format: String, Sendable {
        case text, json
    }

    private let format: Format
    private let quiet: Bool
    private let target: String
    private let istio: IstioFiles?
    private let lastAuthority = NIOLockedValueBox<String?>(nil)
    /// Whether the header's title is out already (printed at once when dialling a relay).
    private let titlePrinted = NIOLockedValueBox(false)
    /// The request inspector's URL, when it runs.
    private let inspector: String?
    /// Why the inspector is not where it was asked to be, for its header line.
    private let inspectorMoved: String?
    /// The embedded relay's `--allow`: who can reach the app, for its header line.
    private let allowed: ClientAllowList?

    init(
        format: Format, quiet: Bool, target: String, istio: IstioFiles?, inspector: String? = nil,
        inspectorMoved: String? = nil, allowed: ClientAllowList? = nil
    ) {
        self.format = format
        self.quiet = quiet
        self.target = target
        self.istio = istio
        self.inspector = inspector
        self.inspectorMoved = inspectorMoved
        self.allowed = allowed
        let terminal = Terminal.standardOutput.isTerminal
        Terminal.standardOutput.update { log in
            log.style = format == .json ? .json : .text
            log.live = format == .text && terminal
        }
    }

    func handle(_ event: AgentEvent) {
        switch event {
        case .tunnelReady(let tunnel):
            let previous = lastAuthority.withLockedValue { last -> String? in
                defer { last = tunnel.authority }
                return last
            }
            let written = previous == tunnel.authority ? nil : istio?.write(for: tunnel)
            Terminal.standardOutput.update { $0.tunnel = tunnel.name ?? "embedded" }
            tunnelReady(tunnel, again: previous != nil, istioFile: written)
        case .request(let record):
            guard !quiet else { return }
            Terminal.requestLines.append(record)
        case .waiting(let request):
            guard !quiet else { return }
            Terminal.standardOutput.append { line, log in log.append(request, to: &line) }
        case .connecting(let relay):
            if format == .json {
                Terminal.json(["event": "connecting", "relay": relay])
            } else {
                printTitle()
                Terminal.out("  connecting to relay \(relay)…")
            }
        case .disconnected(let reason):
            if format == .json {
                Terminal.json(["event": "disconnected", "reason": reason])
            } else {
                Terminal.out("          tunnel lost: \(reason)")
            }
        case .serviceMembers(let members):
            guard let written = istio?.write(members: members) else { return }
            istioChanged(written, members: members)
        case .reconnecting(let attempt, let delay, let reason):
            let seconds = Double(delay.nanoseconds) / 1e9
            if format == .json {
                Terminal.json([
                    "event": "reconnecting", "attempt": attempt, "delay_ms": Int(seconds * 1000), "reason": reason,
                ])
            } else {
                Terminal.out(
                    String(format: "          reconnecting in %.1f s (attempt %d): %@", seconds, attempt, reason))
            }
        }
    }

    private func tunnelReady(_ tunnel: TunnelInfo, again: Bool, istioFile: IstioFiles.Written?) {
        if format == .json {
            var object: [String: any Sendable] = [
                "event": "tunnel_ready", "url": tunnel.url, "authority": tunnel.authority, "host": tunnel.host,
                "port": tunnel.port, "relay": tunnel.relay, "target": target,
            ]
            if let name = tunnel.name { object["name"] = name }
            if let inspector { object["inspector"] = inspector }
            if let inspectorMoved { object["inspector_moved"] = inspectorMoved }
            if let allowed { object["allow"] = allowed.ranges.map(\.description) }
            if !tunnel.alternatives.isEmpty { object["alternatives"] = tunnel.alternatives }
            if let istioFile {
                object["istio_file"] = istioFile.resources; object["istio_restore_file"] = istioFile.restore
                if !istioFile.otherDevelopers.isEmpty { object["istio_developers"] = istioFile.otherDevelopers }
            }
            Terminal.json(object)
            return
        }
        if again && istioFile == nil {
            Terminal.out("          reconnected: \(tunnel.url)")
            return
        }
        if again {
            // A new address after a reconnect: the whole header again, title included.
            Terminal.out("")
            Terminal.out("pinhole agent")
        } else {
            printTitle()
        }
        Terminal.out(
            "  relay      \(tunnel.relay == "embedded" ? "embedded (this machine serves the public side)" : tunnel.relay)"
        )
        Terminal.out("  public URL \(tunnel.url)")
        for alternative in tunnel.alternatives { Terminal.out("             \(alternative)") }
        Terminal.out("  authority  \(tunnel.authority)   <- the host:port for an Istio redirect")
        Terminal.out("  target     \(target)")
        if let allowed { Terminal.out("  reachable  from \(allowed) only   <- --allow to change") }
        if let inspector {
            let note = inspectorMoved.map { "  (\($0))" } ?? "   <- see, replay, edit and replay requests"
            Terminal.out("  inspector  \(inspector)\(note)")
        } else if let inspectorMoved {
            Terminal.out("  inspector  off: \(inspectorMoved)")
        }
        if let istioFile {
            Terminal.out("  istio      wrote \(istioFile.resources) (\(istioFile.summary))")
            if !istioFile.otherDevelopers.isEmpty {
                Terminal.out(
                    "             shared with \(istioFile.otherDevelopers.joined(separator: ", ")) (one rule each)")
            }
            Terminal.out("             apply:     kubectl apply -f \(istioFile.resources)")
            Terminal.out("             when done: kubectl apply -f \(istioFile.restore)")
        }
        Terminal.out("")
        if !quiet { Terminal.out(RequestLogFormat.heading) }
    }

    /// A developer joined or left the service: the file was rewritten and must be applied again.
    private func istioChanged(_ written: IstioFiles.Written, members: ServiceMembers) {
        let names = members.members.map(\.tunnel.name)
        if format == .json {
            Terminal.json([
                "event": "istio_changed", "service": members.service, "namespace": members.namespace,
                "developers": names, "istio_file": written.resources, "istio_restore_file": written.restore,
            ])
            return
        }
        let who = names.count > 1 ? "shared by \(names.joined(separator: ", "))" : "only yours again"
        Terminal.out("  istio      \(members.service).\(members.namespace) is \(who): rewrote \(written.resources)")
        Terminal.out("             apply:     kubectl apply -f \(written.resources)")
    }

    /// The agent stopped for good: in JSON mode, an event says why (the sentence goes to
    /// standard error too).
    func failed(_ error: any Error) {
        guard format == .json else { return }
        Terminal.json(["event": "error", "message": "\(error)"])
    }

    /// The first lines of the header, once: a blank line and the title.
    private func printTitle() {
        let first = titlePrinted.withLockedValue { printed in
            defer { printed = true }
            return !printed
        }
        guard first else { return }
        Terminal.out("")
        Terminal.out("pinhole agent")
    }

    /// On the way out: how many requests were cut short, and how to undo the Istio change.
    func stopped(abandoned: Int) {
        // The abandoned requests' lines first.
        Terminal.requestLines.drain()
        let restore = istio?.lastWritten?.restore
        if format == .json {
            var object: [String: any Sendable] = ["event": "stopped", "abandoned": abandoned]
            if let restore { object["istio_restore_file"] = restore }
            Terminal.json(object)
            return
        }
        Terminal.out("")
        Terminal.out(Self.stoppedLine(abandoned: abandoned))
        if let shared = istio?.lastWritten?.otherDevelopers, !shared.isEmpty {
            // The restore file would remove the other developers' rules too.
            Terminal.out(
                "Others share the service (\(shared.joined(separator: ", "))): apply the file their "
                    + "agents rewrite now, not the restore file")
        } else if let restore {
            Terminal.out("Put the plain route back with:  kubectl apply -f \(restore)")
        }
    }

    static func stoppedLine(abandoned: Int) -> String {
        switch abandoned {
        case 0: return "stopped"
        case 1: return "stopped (1 request abandoned)"
        default: return "stopped (\(abandoned) requests abandoned)"
        }
    }
}
