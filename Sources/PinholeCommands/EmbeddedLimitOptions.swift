import ArgumentParser
import NIOCore
import PinholeAgent
import PinholeCore

/// The embedded relay's limits, with the relay's flags and defaults: an agent that serves
/// the public side itself meets the same strangers a relay does (anyone `--allow` lets in).
/// Each is optional here only to tell a flag given from a default, so that one given
/// with `--relay`, where the relay's own flags decide, is refused instead of ignored.
struct EmbeddedLimitOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Requests in flight from one client address (IPv6: one /64), loopback included; more wait, then get"
                + " 503. Default: \(InFlightLimits.Caps().perAddress).", valueName: "count"))
    var maxInFlightPerAddress: Int?

    @Option(
        help: ArgumentHelp(
            "How long a request over --max-in-flight-per-address waits for a place before it gets 503."
                + " Default: \(Self.defaultInFlightWait).", valueName: "seconds"))
    var inFlightWait: Int?

    @Option(
        help: ArgumentHelp(
            "Cut off a client that sends none of its request body, or reads none of its answer, for this long;"
                + " 0 = never. Waits on your app (a breakpoint) never count. Default:"
                + " \(PublicLimits.defaultStallTimeout.nanoseconds / 1_000_000_000).", valueName: "seconds"))
    var stallTimeout: Int?

    @Option(
        help: ArgumentHelp(
            "Public connections open at once; more are closed at once. Default:"
                + " \(ConnectionLimits.Caps.publicDefault.total).", valueName: "count"))
    var maxConnections: Int?

    @Option(
        help: ArgumentHelp(
            "Public connections open at once from one client address (IPv6: one /64). Default:"
                + " \(ConnectionLimits.Caps.publicDefault.perAddress).", valueName: "count"))
    var maxConnectionsPerAddress: Int?

    /// `InFlightLimits`' default, in whole seconds as the flag takes it (the relay's
    /// `--in-flight-wait` too).
    static let defaultInFlightWait = Int(InFlightLimits.Caps().waitLimit.nanoseconds / 1_000_000_000)

    /// The flags given, as typed, for the refusal with `--relay`.
    var given: [String] {
        [
            ("--max-in-flight-per-address", maxInFlightPerAddress), ("--in-flight-wait", inFlightWait),
            ("--stall-timeout", stallTimeout), ("--max-connections", maxConnections),
            ("--max-connections-per-address", maxConnectionsPerAddress),
        ].compactMap { $0.1 == nil ? nil : $0.0 }
    }

    func validate() throws {
        for (flag, value) in [
            ("--max-in-flight-per-address", maxInFlightPerAddress), ("--max-connections", maxConnections),
            ("--max-connections-per-address", maxConnectionsPerAddress),
        ] {
            if let value, value < 1 { throw ValidationError("\(flag) must be at least 1") }
        }
        for (flag, value) in [("--in-flight-wait", inFlightWait), ("--stall-timeout", stallTimeout)] {
            if let value, value < 0 { throw ValidationError("\(flag) must be 0 or a number of seconds") }
        }
    }

    /// Sets the limits on `configuration`. The connection caps are fitted to the open-file
    /// limit (raised if it can be); the warning, if any, says what of `--max-connections`
    /// could not be had.
    func apply(to configuration: inout AgentConfiguration) -> String? {
        configuration.inFlightCaps = InFlightLimits.Caps(
            perAddress: maxInFlightPerAddress ?? InFlightLimits.Caps().perAddress,
            waitLimit: .seconds(Int64(inFlightWait ?? Self.defaultInFlightWait)), countsTunnels: false)
        if let stallTimeout { configuration.stallTimeout = stallTimeout == 0 ? nil : .seconds(Int64(stallTimeout)) }
        let total = maxConnections ?? ConnectionLimits.Caps.publicDefault.total
        let fitted = FileDescriptorLimit.fitEmbedded(publicConnections: total)
        configuration.publicConnectionCaps = ConnectionLimits.Caps(
            total: fitted.publicConnections,
            perAddress: min(
                maxConnectionsPerAddress ?? ConnectionLimits.Caps.publicDefault.perAddress, fitted.publicConnections))
        // Fitting the default quietly: a low open-file limit is common on a laptop, and
        // a warning at every start would only teach newcomers to skip the header.
        return maxConnections == nil ? nil : fitted.warning
    }
}
