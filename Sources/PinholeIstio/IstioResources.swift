import Yams

// The slice of the Istio networking API that Pinhole writes, as values that turn into Yams
// nodes. Nodes are built here rather than through YAMLEncoder because that is what gives
// control over three things the API server cares about: keys stay in the order Istio's docs
// use (apiVersion, kind, metadata, spec), absent fields are left out instead of written as
// null, and percentages are written as decimals (YAMLEncoder writes 100.0 as `1e+2`, which
// YAML 1.1 readers such as PyYAML take for a string).

/// A value that knows its YAML node.
protocol YAMLNodeConvertible {
    var yamlNode: Node { get }
}

extension Node: YAMLNodeConvertible {
    var yamlNode: Node { self }

    /// A mapping in the order given, without the pairs whose value is nil.
    static func orderedMapping(_ pairs: KeyValuePairs<String, (any YAMLNodeConvertible)?>) -> Node {
        Node(pairs.compactMap { key, value in value.map { (key.yamlNode, $0.yamlNode) } })
    }
}

// go-yaml v2, which kubectl uses, reads these as booleans although YAML 1.1's core
// resolver (and so Yams) does not; quote them so a header value "y" stays a string.
private let goYAMLBooleans: Set<String> = ["y", "Y", "n", "N"]

extension String: YAMLNodeConvertible {
    var yamlNode: Node {
        // Yams quotes strings that would read back as another type ("true", "307", "~").
        var scalar = represented()
        if goYAMLBooleans.contains(self) {
            scalar.style = .singleQuoted
        }
        return .scalar(scalar)
    }
}

extension Int: YAMLNodeConvertible {
    var yamlNode: Node { .scalar(represented()) }
}

extension Array: YAMLNodeConvertible where Element: YAMLNodeConvertible {
    var yamlNode: Node { Node(map(\.yamlNode)) }
}

/// One Kubernetes object.
struct IstioResource: YAMLNodeConvertible {
    enum Kind: String {
        case virtualService = "VirtualService"
        case serviceEntry = "ServiceEntry"
        case destinationRule = "DestinationRule"
    }

    /// Lets `kubectl delete … -l app.kubernetes.io/managed-by=pinhole` clean up after a session.
    static let managedByLabel = (key: "app.kubernetes.io/managed-by", value: "pinhole")

    var apiVersion: IstioAPIVersion
    var kind: Kind
    var name: String
    var namespace: String
    var spec: any YAMLNodeConvertible
    /// Who wrote it (`ResourceOwnership`), in order; none leaves `annotations` out.
    var annotations: [(key: String, value: String)] = []

    var yamlNode: Node {
        .orderedMapping([
            "apiVersion": apiVersion.apiVersion,
            "kind": kind.rawValue,
            "metadata": Node.orderedMapping([
                "name": name,
                "namespace": namespace,
                "labels": Node.orderedMapping([Self.managedByLabel.key: Self.managedByLabel.value]),
                "annotations": annotations.isEmpty
                    ? nil : Node(annotations.map { ($0.key.yamlNode, $0.value.yamlNode) }),
            ]),
            "spec": spec,
        ])
    }
}

// MARK: VirtualService

struct VirtualServiceSpec: YAMLNodeConvertible {
    var hosts: [String]
    var http: [HTTPRoute]

    var yamlNode: Node { .orderedMapping(["hosts": hosts, "http": http]) }
}

struct HTTPRoute: YAMLNodeConvertible {
    var name: String
    var match: [HTTPMatchRequest]? = nil
    var redirect: HTTPRedirect? = nil
    var rewrite: HTTPRewrite? = nil
    var route: [HTTPRouteDestination]? = nil
    var mirror: Destination? = nil
    var mirrorPercentage: Percent? = nil
    var timeout: String? = nil
    var retries: HTTPRetry? = nil

    var yamlNode: Node {
        .orderedMapping([
            "name": name,
            "match": match,
            "redirect": redirect,
            "rewrite": rewrite,
            "route": route,
            "mirror": mirror,
            "mirrorPercentage": mirrorPercentage,
            "timeout": timeout,
            "retries": retries,
        ])
    }
}

/// `headers: {NAME: {exact|prefix|regex: VALUE}}`
struct HTTPMatchRequest: YAMLNodeConvertible {
    var header: HeaderMatch

    var yamlNode: Node {
        .orderedMapping([
            "headers": Node.orderedMapping([header.name: Node.orderedMapping([header.kind.rawValue: header.value])])
        ])
    }
}

/// `retries: {attempts: N}`; 0 turns off the retries Istio adds by default.
struct HTTPRetry: YAMLNodeConvertible {
    var attempts: Int

    var yamlNode: Node { .orderedMapping(["attempts": attempts]) }
}

struct HTTPRedirect: YAMLNodeConvertible {
    var authority: String
    var port: Int?
    var scheme: String
    var redirectCode: Int

    var yamlNode: Node {
        .orderedMapping(["authority": authority, "port": port, "scheme": scheme, "redirectCode": redirectCode])
    }
}

struct HTTPRewrite: YAMLNodeConvertible {
    var authority: String

    var yamlNode: Node { .orderedMapping(["authority": authority]) }
}

struct HTTPRouteDestination: YAMLNodeConvertible {
    var destination: Destination

    var yamlNode: Node { .orderedMapping(["destination": destination]) }
}

struct Destination: YAMLNodeConvertible {
    var host: String
    var port: Int

    var yamlNode: Node {
        .orderedMapping(["host": host, "port": Node.orderedMapping(["number": port])])
    }
}

/// Istio's `Percent` (`{value: N}`), rounded to the 0.0001 steps Envoy mirrors in and written
/// as a decimal.
struct Percent: YAMLNodeConvertible {
    var value: Double

    var yamlNode: Node {
        let tenThousandths = Int((value * 10_000).rounded())
        var text = String(tenThousandths / 10_000)
        let fraction = tenThousandths % 10_000
        if fraction != 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 4 - digits.count) + digits
            while digits.hasSuffix("0") {
                digits.removeLast()
            }
            text += "." + digits
        }
        return .orderedMapping(["value": Node(text, Tag(.float))])
    }
}

// MARK: ServiceEntry and DestinationRule

struct ServiceEntrySpec: YAMLNodeConvertible {
    struct Port: YAMLNodeConvertible {
        var number: Int
        var name: String
        var `protocol`: String

        var yamlNode: Node { .orderedMapping(["number": number, "name": name, "protocol": `protocol`]) }
    }

    struct Endpoint: YAMLNodeConvertible {
        var address: String

        var yamlNode: Node { .orderedMapping(["address": address]) }
    }

    var hosts: [String]
    var location: String
    var ports: [Port]
    var resolution: String
    var endpoints: [Endpoint]

    var yamlNode: Node {
        .orderedMapping([
            "hosts": hosts,
            "location": location,
            "ports": ports,
            "resolution": resolution,
            "endpoints": endpoints,
        ])
    }
}

/// `trafficPolicy.tls` for a host: the sidecar opens TLS itself (mode SIMPLE).
struct DestinationRuleSpec: YAMLNodeConvertible {
    var host: String
    var sni: String?

    var yamlNode: Node {
        .orderedMapping([
            "host": host,
            "trafficPolicy": Node.orderedMapping([
                "tls": Node.orderedMapping(["mode": "SIMPLE", "sni": sni])
            ]),
        ])
    }
}
