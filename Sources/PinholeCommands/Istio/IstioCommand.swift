import ArgumentParser
import Foundation
import PinholeCore
import PinholeIstio

/// `agent istio`: the Istio resources for a tunnel, without starting one, so they can be
/// reviewed or piped into `kubectl apply -f -`.
public struct IstioCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "agent istio",
        abstract: "Print the Istio resources for a tunnel, without starting one.",
        usage: "agent istio --service S [--namespace NS] (--authority H[:P] | --restore)",
        // Lines under 80 columns by hand, so no command is broken where it cannot be pasted.
        discussion: """
            Nothing is started: the resources are printed (or written with
            --istio-out) for the tunnel whose public address you give with
            --authority, as pods in the cluster reach it.

            The VirtualService takes the name of the service. If the service
            already has a VirtualService under another name, Istio uses only one
            of the two for sidecars: merge the pinhole-debug rule into yours
            instead of applying this one.

            Examples:
              # Requests carrying 'x-user: debug' are redirected to the tunnel:
              agent istio --service checkout --namespace shop \\
                --authority dev.tunnel.example.com:8080 | kubectl apply -f -

              # Copy 10% of all requests to the laptop, through a relay port:
              agent istio --istio mirror --mirror-percent 10 \\
                --service checkout --namespace shop \\
                --authority 203.0.113.7:20001 | kubectl apply -f -

              # When done: put the plain route back, then remove what Pinhole
              # added:
              agent istio --service checkout --namespace shop --restore \\
                | kubectl apply -f -
              kubectl delete serviceentry,destinationrule -n shop \\
                -l app.kubernetes.io/managed-by=pinhole
            """,
        version: PinholeVersion.current
    )

    @OptionGroup public var istio: IstioOptions

    @Option(
        help: ArgumentHelp(
            "The tunnel's public address as pods reach it: HOST, HOST:PORT or [IPv6]:PORT. Not needed with --restore.",
            valueName: "host[:port]"
        )
    )
    public var authority: String?

    @Option(
        help: """
            The scheme of the tunnel's public address (the relay serves plain HTTP unless a TLS proxy \
            fronts it); the port defaults to 80 or 443 accordingly.
            """)
    public var scheme: TunnelEndpoint.Scheme = .http

    @Flag(help: "Print the VirtualService that routes everything to the service again, undoing the resources.")
    public var restore = false

    public init() {}

    public func validate() throws {
        guard istio.service != nil else {
            throw ValidationError("--service NAME is required: the Kubernetes Service whose traffic should reach you")
        }
        if restore {
            return
        }
        if istio.resolvedMode == .none {
            throw ValidationError("--istio none prints nothing; choose redirect, mirror or route (or use --restore)")
        }
        _ = try tunnel()
    }

    /// The YAML `run()` prints, as a value so it can be tested without capturing stdout.
    public func render() throws -> String {
        guard let service = istio.service else {
            throw ValidationError("--service NAME is required")
        }
        do {
            if restore {
                return try IstioRenderer.renderRestore(
                    service: service,
                    namespace: istio.namespace,
                    servicePort: istio.servicePort,
                    apiVersion: istio.apiVersion,
                    ownership: ResourceOwnership(tunnel: authority)
                )
            }
            guard var plan = try istio.plan(tunnel: try tunnel()) else {
                throw IstioError.nothingToRender
            }
            plan.ownership = ResourceOwnership(tunnel: authority)
            return try IstioRenderer.render(plan)
        } catch let error as IstioError {
            throw ValidationError(error.description)
        }
    }

    public func run() throws {
        let yaml = try render()
        for warning in istio.warnings { Terminal.error("agent istio: warning: \(warning)") }
        guard let path = istio.outputPath else {
            print(yaml, terminator: "")
            return
        }
        do {
            try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw OutputError(path: path, reason: error.localizedDescription)
        }
    }

    /// Not a usage mistake, so not a `ValidationError` (which would print the usage too).
    private struct OutputError: Error, CustomStringConvertible {
        let path: String
        let reason: String

        var description: String { "cannot write \(path): \(reason)" }
    }

    private func tunnel() throws -> TunnelEndpoint {
        guard let authority else {
            throw ValidationError("--authority HOST[:PORT] is required: the tunnel's public address as pods reach it")
        }
        do {
            return try TunnelEndpoint(authority: authority, scheme: scheme)
        } catch {
            throw ValidationError("--authority: \(error)")
        }
    }
}
