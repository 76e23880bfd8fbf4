/// How the rules that send traffic to the tunnel (route's, and mirror's) treat a request
/// that takes long: a request held at a breakpoint must be neither cut nor sent twice.
///
/// - Retries: Istio retries by default (2 attempts on connect-failure, refused-stream,
///   unavailable, cancelled and retriable 503s). A POST paused in the debugger, whose
///   caller gives up or whose connection resets, could be sent again, to the laptop or to
///   the cluster. The rules say `retries: {attempts: 0}` unless `--debug-retries` says more.
/// - Timeout: left out unless `--debug-timeout` sets one. Istio's route timeout is disabled
///   when absent, which is what a breakpoint needs. `timeout: 0s`, Envoy's spelling of
///   "none", is refused by Istio's CRD ("must be a valid duration greater than 1ms").
public struct DebugRulePolicy: Sendable, Equatable {
    /// An Istio duration (`30s`, `1m30s`, `500ms`), or nil for none.
    public let timeout: String?
    /// Retries after the first attempt; 0 turns Istio's default retries off.
    public let retries: Int

    /// No timeout, no retries: what a breakpoint needs.
    public static let breakpointSafe = DebugRulePolicy(checkedTimeout: nil, retries: 0)

    public init(timeout: String? = nil, retries: Int = 0) throws(IstioError) {
        if let timeout { try Self.checkTimeout(timeout) }
        try Self.checkRetries(retries)
        self.init(checkedTimeout: timeout, retries: retries)
    }

    private init(checkedTimeout: String?, retries: Int) {
        self.timeout = checkedTimeout
        self.retries = retries
    }

    public static func checkTimeout(_ text: String) throws(IstioError) {
        guard let seconds = IstioDuration.seconds(text) else {
            throw .invalidDuration(flag: "--debug-timeout", value: text)
        }
        guard seconds >= 0.001 else {
            throw .durationTooShort(flag: "--debug-timeout", value: text)
        }
    }

    public static func checkRetries(_ retries: Int) throws(IstioError) {
        guard (0...100).contains(retries) else {
            throw .retriesOutOfRange(retries)
        }
    }
}

/// Go's `time.ParseDuration` syntax, which Istio's CRD evaluates: one or more
/// `NUMBER UNIT` parts, units ns, us, µs, ms, s, m, h.
enum IstioDuration {
    private static let unitSeconds: [(unit: String, seconds: Double)] = [
        ("ns", 1e-9), ("us", 1e-6), ("µs", 1e-6), ("ms", 1e-3), ("s", 1), ("m", 60), ("h", 3600),
    ]

    static func seconds(_ text: String) -> Double? {
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, number.first != ".", let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            // Longest unit first, so "ms" is not read as "m".
            let candidates = unitSeconds.sorted { $0.unit.count > $1.unit.count }
            guard let match = candidates.first(where: { rest.hasPrefix($0.unit) }) else { return nil }
            rest = rest.dropFirst(match.unit.count)
            total += value * match.seconds
        }
        return total
    }
}
