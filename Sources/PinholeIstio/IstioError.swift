import PinholeCore

/// Everything that can be wrong with the Istio part of Pinhole's configuration,
/// phrased for the developer who typed it: what was refused, why, and what would work.
public enum IstioError: Error, Sendable, Equatable {
    /// A Kubernetes or DNS name breaks its naming rule. `kind` says what the name is
    /// for ("service", "namespace", "tunnel host"), `rule` which rule it breaks.
    case invalidName(kind: String, value: String, rule: String, example: String)
    /// `--match-header` could not be read, or would never match anything.
    case invalidHeaderMatch(input: String, reason: String)
    /// The tunnel's public authority (`HOST[:PORT]`) could not be used.
    case invalidTunnel(input: String, reason: String)
    /// A port number outside 1...65535.
    case portOutOfRange(kind: String, value: Int)
    /// A redirect status code that Istio cannot emit.
    case unsupportedRedirectCode(Int)
    /// A mirror percentage outside (0, 100], or finer than Envoy can express.
    case mirrorPercentOutOfRange(Double)
    /// Mode `none` was asked to render resources.
    case nothingToRender
    /// A redirect was asked for a gRPC service, whose clients never follow one.
    case redirectWithGRPC
    /// A duration flag that Go's duration syntax (which Istio uses) cannot read.
    case invalidDuration(flag: String, value: String)
    /// A duration below the 1 ms Istio's CRD accepts.
    case durationTooShort(flag: String, value: String)
    /// A retry count outside 0...100.
    case retriesOutOfRange(Int)
    /// Yams refused to serialise the resources (a bug in Pinhole, not in the input).
    case encodingFailed(reason: String)
}

extension IstioError {
    /// A name that breaks its Kubernetes naming rule, as an Istio configuration error.
    public init(_ name: InvalidName) {
        self = .invalidName(kind: name.kind, value: name.value, rule: name.rule, example: name.example)
    }
}

extension IstioError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .invalidName(let kind, let value, let rule, let example):
            return InvalidName(kind: kind, value: value, rule: rule, example: example).description
        case .invalidHeaderMatch(let input, let reason):
            return "header match '\(input)' is not valid: \(reason); "
                + "write NAME=VALUE (exact), NAME^=PREFIX (prefix) or NAME~REGEX (RE2 regex), e.g. x-user=debug"
        case .invalidTunnel(let input, let reason):
            return "tunnel authority '\(input)' is not valid: \(reason); "
                + "give HOST or HOST:PORT as the cluster reaches the relay, e.g. tunnel.example.com:8443"
        case .portOutOfRange(let kind, let value):
            return "\(kind) \(value) is not a port number; use 1 to 65535"
        case .unsupportedRedirectCode(let code):
            return "redirect code \(code) is not supported by Istio; use 307 (temporary, keeps the method and body), "
                + "308, 302, 303 or 301 (301 and 308 are cached by clients, which outlives the debugging session)"
        case .mirrorPercentOutOfRange(let value):
            return "mirror percentage \(value) is out of range; use a value above 0 and at most 100 "
                + "(Envoy's resolution is 0.0001), e.g. 100 to mirror every request"
        case .nothingToRender:
            return "Istio mode 'none' produces no resources; choose redirect, mirror or route to render some"
        case .redirectWithGRPC:
            return "redirect mode cannot work for a gRPC service: gRPC clients do not follow redirects; "
                + "use route (the default for gRPC) or mirror"
        case .invalidDuration(let flag, let value):
            return "\(flag) '\(value)' is not a duration; write a number and a unit, e.g. 30s, 1m30s or 500ms"
        case .durationTooShort(let flag, let value):
            return "\(flag) '\(value)' is shorter than the 1ms Istio accepts; leave the flag out for no timeout"
        case .retriesOutOfRange(let value):
            return "--debug-retries \(value) is out of range; use 0 (no retries, the default) to 100"
        case .encodingFailed(let reason):
            return "could not write the Istio resources as YAML (\(reason)); this is a bug in Pinhole, please report it"
        }
    }
}
