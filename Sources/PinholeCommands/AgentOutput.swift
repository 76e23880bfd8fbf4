import Foundation
import NIOConcurrencyHelpers
import NIOCore
import PinholeAgent
import PinholeCore
import PinholeIstio

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

    init(format: Format, quiet: Bool, target: String, istio: IstioFiles?) {
        self.format = format
        self.quiet = quiet
        self.target = target
        self.istio = istio
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
            Terminal.standardOutput.append { line, log in log.append(record, to: &line) }
        case .waiting(let request):
            guard !quiet else { return }
            Terminal.standardOutput.append { line, log in log.append(request, to: &line) }
        case .disconnected(let reason):
            if format == .json {
                Terminal.json(["event": "disconnected", "reason": reason])
            } else {
                Terminal.out("          tunnel lost: \(reason)")
            }
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
            if !tunnel.alternatives.isEmpty { object["alternatives"] = tunnel.alternatives }
            if let istioFile {
                object["istio_file"] = istioFile.resources; object["istio_restore_file"] = istioFile.restore
            }
            Terminal.json(object)
            return
        }
        if again && istioFile == nil {
            Terminal.out("          reconnected: \(tunnel.url)")
            return
        }
        Terminal.out("")
        Terminal.out("pinhole agent")
        Terminal.out(
            "  relay      \(tunnel.relay == "embedded" ? "embedded (this machine serves the public side)" : tunnel.relay)"
        )
        Terminal.out("  public URL \(tunnel.url)")
        for alternative in tunnel.alternatives { Terminal.out("             \(alternative)") }
        Terminal.out("  authority  \(tunnel.authority)   <- the host:port for an Istio redirect")
        Terminal.out("  target     \(target)")
        if let istioFile {
            Terminal.out("  istio      wrote \(istioFile.resources) (\(istioFile.summary))")
            Terminal.out("             apply:     kubectl apply -f \(istioFile.resources)")
            Terminal.out("             when done: kubectl apply -f \(istioFile.restore)")
        }
        Terminal.out("")
        if !quiet { Terminal.out(RequestLogFormat.heading) }
    }

    /// The agent stopped for good: in JSON mode, an event says why (the sentence goes to
    /// standard error too).
    func failed(_ error: any Error) {
        guard format == .json else { return }
        Terminal.json(["event": "error", "message": "\(error)"])
    }

    /// On the way out: how to undo the Istio change.
    func stopped() {
        let restore = istio?.lastWritten?.restore
        if format == .json {
            var object: [String: any Sendable] = ["event": "stopped"]
            if let restore { object["istio_restore_file"] = restore }
            Terminal.json(object)
        } else if let restore {
            Terminal.out("")
            Terminal.out("stopped. Put the plain route back with:  kubectl apply -f \(restore)")
        }
    }
}
