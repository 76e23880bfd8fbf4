/// The version of Pinhole, as `--version` prints it and the agent's hello sends it
/// (so a relay's log says which agents connect). Raised with each release.
public enum PinholeVersion {
    public static let current = "0.1.0"
    /// What the agent calls itself in its hello: `pinhole-agent/0.1.0`.
    public static let agentSoftware = "pinhole-agent/\(current)"
}
