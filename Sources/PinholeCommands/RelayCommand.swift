import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import PinholeCore
import PinholeIstio
import PinholeRelay
import PinholeTLS
import PinholeTunnel

/// `relay`: run on a VM the cluster can reach.
public struct RelayCommand: AsyncParsableCommand {
    private static let forgetAfter = RelayConfiguration.describe(RelayConfiguration.defaultForgetAfter)

    // Help lines are kept under 80 columns by hand: ArgumentParser re-wraps a longer
    // line wherever it reaches the edge, which broke sentences and commands apart.
    public static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "Carry public HTTP requests to Pinhole agents over TLS.",
        usage: "relay (--domain D | --tunnel-ports A-B) [--token T] [options]",
        discussion: """
            Run this on a machine the cluster (and browsers) can reach. Agents on
            developers' laptops dial --agent-port over TLS; public requests arrive
            on --public-port and go to the agent whose tunnel they name:

              --domain D          tunnel NAME is http://NAME.D:PUBLIC-PORT;
                                  point *.D at this machine
              --tunnel-ports A-B  each tunnel gets a port of its own (default:
                                  the 100 ports after --public-port)

            A tunnel's name, aliases and port belong to the token that registered
            them, across restarts (kept in registry.json beside --cert), until unused
            for --forget-after (\(forgetAfter)): the agent comes back at the same
            address, and no other token gets them.

            On first start without --cert/--key the relay creates a self-signed
            certificate in certs/ and prints its sha256 fingerprint and the
            exact agent command line. Open the public port(s) and the agent
            port in the VM's firewall.

            Examples:
              relay --domain tunnels.example.com --public-port 80 --token "$TOKEN"
              relay --public-host 203.0.113.7 --tunnel-ports 20000-20099
            """,
        version: PinholeVersion.current
    )

    @Option(help: "Address to listen on.")
    var bind = "0.0.0.0"

    @Option(help: "Port for public HTTP (the cluster and browsers connect here).")
    var publicPort = 8080

    @Option(help: "Port agents connect to, over TLS.")
    var agentPort = 4443

    @Option(
        help: ArgumentHelp(
            "Serve tunnels as NAME.DOMAIN on the public port, routed by the Host header.", valueName: "domain"))
    var domain: String?

    @Option(
        help: ArgumentHelp(
            "This relay's name or IP as the cluster sees it; goes into tunnel addresses and the certificate.",
            valueName: "host"))
    var publicHost: String?

    @Option(
        help: ArgumentHelp(
            "Without --domain: give each tunnel its own public port from this range. A tunnel keeps its port"
                + " until unused for --forget-after.",
            valueName: "A-B"))
    var tunnelPorts: String?

    @Option(
        name: .customLong("token"),
        help: ArgumentHelp(
            "A token agents may use, 16 characters or more (repeatable). Also PINHOLE_TOKENS=tok1,tok2.",
            valueName: "token"))
    var tokens: [String] = []

    @Option(help: ArgumentHelp("A file with one token per line.", valueName: "file"))
    var tokenFile: String?

    @Option(
        help: ArgumentHelp(
            "Token checks one address (IPv6: one /64) may have in any 5 s, however many connections it opens.",
            valueName: "count"))
    var tokenChecks = 10

    @Option(help: ArgumentHelp("Certificate chain (PEM). Generated on first start when missing.", valueName: "file"))
    var cert = "certs/relay.crt"

    @Option(help: ArgumentHelp("Private key (PEM) for --cert.", valueName: "file"))
    var key = "certs/relay.key"

    @Flag(
        help: ArgumentHelp(
            "Serve the public port(s) over TLS, with ALPN h2 and http/1.1, using --cert/--key (or --public-cert/"
                + "--public-key). Without it they speak plain HTTP/1.1 and HTTP/2 (h2c)."))
    var publicTls = false

    @Option(
        help: ArgumentHelp(
            "Certificate chain (PEM) for the public port(s), when it should not be the agents' one; implies "
                + "--public-tls.",
            valueName: "file"))
    var publicCert: String?

    @Option(help: ArgumentHelp("Private key (PEM) for --public-cert.", valueName: "file"))
    var publicKey: String?

    @Option(help: ArgumentHelp("Most tunnels connected at once; more agents wait for room.", valueName: "count"))
    var maxTunnels = 1000

    @Option(help: ArgumentHelp("Most tunnels one token has connected at once; more wait for room.", valueName: "count"))
    var maxTunnelsPerToken = 32

    @Option(
        help: ArgumentHelp(
            "Most names one token owns, connected or not; a new one past it forgets the token's longest unused.",
            valueName: "count"))
    var maxNamesPerToken = 128

    @Option(help: ArgumentHelp("Most service aliases one tunnel may ask for.", valueName: "count"))
    var maxAliases = 16

    @Option(
        help: ArgumentHelp(
            "Days a tunnel's name, aliases and port stay its token's once unused; 0 = for ever.",
            valueName: "days"))
    var forgetAfter = Int(RelayConfiguration.defaultForgetAfter.nanoseconds / 1_000_000_000 / 86_400)

    @Option(
        help: ArgumentHelp(
            "Seconds between keepalive PINGs; a silent agent is dropped after about two.", valueName: "seconds"))
    var keepalive = 15

    @Option(
        help: ArgumentHelp(
            "Give up on a request after this many seconds (default: never, for debuggers).", valueName: "seconds"))
    var requestTimeout: Int?

    @Option(
        help: ArgumentHelp(
            "Close a public connection that has carried no request for this many seconds; 0 = never. The default"
                + " outlasts the hour Envoy keeps idle upstream connections, so sidecars never race the close.",
            valueName: "seconds"))
    var idleTimeout = Int(PublicRequestHandler.defaultIdleTimeout.nanoseconds / 1_000_000_000)

    @Option(
        help: ArgumentHelp(
            "Requests in flight from one client address (IPv6: one /64), loopback included. Keep it generous:"
                + " a cluster's sidecars may share one NAT address.", valueName: "count"))
    var maxInFlightPerAddress = InFlightLimits.Caps().perAddress

    @Option(help: ArgumentHelp("Requests in flight through one tunnel.", valueName: "count"))
    var maxInFlightPerTunnel = InFlightLimits.Caps().perTunnel

    @Option(
        help: ArgumentHelp(
            "How long a request over a cap on requests in flight waits for a place before it gets 503.",
            valueName: "seconds"))
    var inFlightWait = EmbeddedLimitOptions.defaultInFlightWait

    @Option(
        help: ArgumentHelp(
            "Cut off a client that sends none of its request body, or reads none of its answer, for this long;"
                + " 0 = never. Waits on the app (a breakpoint) never count.", valueName: "seconds"))
    var stallTimeout = Int(PublicLimits.defaultStallTimeout.nanoseconds / 1_000_000_000)

    @Option(
        help: ArgumentHelp(
            "Public connections open at once, all public ports together; more are closed at once.",
            valueName: "count"))
    var maxConnections = ConnectionLimits.Caps.publicDefault.total

    @Option(
        help: ArgumentHelp(
            "Public connections open at once from one client address (IPv6: one /64). Keep it generous: a"
                + " cluster's sidecars may share one NAT address.", valueName: "count"))
    var maxConnectionsPerAddress = ConnectionLimits.Caps.publicDefault.perAddress

    @Option(
        help: ArgumentHelp(
            "Agent connections open at once (handshakes included), counted apart from public ones.",
            valueName: "count"))
    var maxAgentConnections = ConnectionLimits.Caps.agentDefault.total

    @Option(help: ArgumentHelp("Agent connections open at once from one address.", valueName: "count"))
    var maxAgentConnectionsPerAddress = ConnectionLimits.Caps.agentDefault.perAddress

    @Option(help: ArgumentHelp("Event-loop threads (default: one per core).", valueName: "count"))
    var threads: Int?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    public init() {}
}
