import Foundation
import PinholeCore

/// Who wrote a resource, as annotations, so someone reading the cluster can tell whose it
/// is: `kubectl get virtualservice checkout -o yaml` shows the tunnel, the machine, when it
/// was made and with which agent.
public struct ResourceOwnership: Sendable, Equatable {
    public static let tunnelKey = "pinhole.dev/tunnel"
    public static let machineKey = "pinhole.dev/machine"
    public static let createdKey = "pinhole.dev/created"
    public static let versionKey = "pinhole.dev/agent-version"

    /// The tunnel's name (or, without one, its authority); nil when there is none (a
    /// restore printed without a tunnel).
    public var tunnel: String?
    /// The host name of the machine the agent runs on.
    public var machine: String
    public var created: Date
    public var agentVersion: String

    public init(
        tunnel: String?, machine: String = ProcessInfo.processInfo.hostName, created: Date = Date(),
        agentVersion: String = PinholeVersion.current
    ) {
        self.tunnel = tunnel
        self.machine = machine
        self.created = created
        self.agentVersion = agentVersion
    }

    /// RFC 3339 in UTC, to the second: `2026-12-07T01:49:22Z`.
    public var createdText: String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: created)
    }

    var annotations: [(key: String, value: String)] {
        let tunnel = self.tunnel.map { [(key: Self.tunnelKey, value: $0)] } ?? []
        return tunnel + [(Self.machineKey, machine), (Self.createdKey, createdText), (Self.versionKey, agentVersion)]
    }
}
