import PinholeCore
import PinholeIstio
import Testing

private let tunnel = try! TunnelEndpoint(host: "tunnel.example.com")

/// The thrown error's message, which is what a developer reads.
private func message(_ body: () throws(IstioError) -> Void) -> String? {
    do {
        try body()
        return nil
    } catch {
        return error.description
    }
}

@Suite("Istio plan validation")
struct IstioPlanTests {
    @Test func defaults() throws {
        let plan = try IstioPlan(mode: .redirect, service: "checkout", tunnel: tunnel)
        #expect(plan.namespace == "default")
        #expect(plan.servicePort == 3000)
        #expect(plan.headerMatch == .default)
        #expect(plan.headerMatch.description == "x-user=debug")
        #expect(plan.redirectCode == 307)
        #expect(plan.mirrorPercent == 100)
        #expect(plan.apiVersion == .v1)
        #expect(plan.tunnelServiceHost == "checkout.pinhole")
        #expect(plan.tunnelResourceName == "checkout-pinhole")
    }

    @Test(
        arguments: [
            ("My_Service", "uppercase"),
            ("my_service", "'_'"),
            ("-checkout", "starts with '-'"),
            ("checkout-", "ends with '-'"),
            ("9lives", "start with a letter"),
            ("", "empty"),
            (String(repeating: "a", count: 64), "64 characters"),
        ]
    )
    func invalidServiceNamesAreRefusedByName(service: String, rule: String) throws {
        let text = try #require(
            message { () throws(IstioError) in
                _ = try IstioPlan(mode: .redirect, service: service, tunnel: tunnel)
            }
        )
        #expect(text.contains("service '\(service)'"))
        #expect(text.contains(rule))
        #expect(text.contains("for example 'my-service'"))
    }

    @Test(arguments: ["-bad", "Shop", "shop.prod", String(repeating: "n", count: 64)])
    func invalidNamespacesAreRefusedByName(namespace: String) throws {
        let text = try #require(
            message { () throws(IstioError) in
                _ = try IstioPlan(mode: .redirect, service: "checkout", namespace: namespace, tunnel: tunnel)
            }
        )
        #expect(text.contains("namespace '\(namespace)'"))
        #expect(text.contains("for example"))
    }

    @Test func longestLabelsAreAccepted() throws {
        let name = "a" + String(repeating: "-", count: 61) + "z"
        #expect(name.count == 63)
        _ = try IstioPlan(mode: .redirect, service: name, namespace: name, tunnel: tunnel)
    }

    @Test func dnsRules() {
        #expect(DNS1123.labelViolation("team-a") == nil)
        #expect(DNS1123.labelViolation("9lives") == nil, "namespaces may start with a digit")
        #expect(DNS1123.serviceNameViolation("9lives") != nil, "Service names may not")
        #expect(DNS1123.subdomainViolation("a.b-c.example") == nil)
        #expect(DNS1123.subdomainViolation("a..b")?.contains("empty label") == true)
        #expect(DNS1123.subdomainViolation("a.-b")?.contains("'-b'") == true)
        #expect(DNS1123.subdomainViolation(String(repeating: "a.", count: 127) + "ab")?.contains("253") == true)
    }

    @Test(arguments: [0, -1, 65536])
    func servicePortMustBeAPort(port: Int) {
        #expect(throws: IstioError.portOutOfRange(kind: "service port", value: port)) {
            try IstioPlan(mode: .redirect, service: "checkout", servicePort: port, tunnel: tunnel)
        }
    }

    @Test(arguments: [200, 300, 304, 305, 306, 309, 404])
    func redirectCodeMustBeOneIstioSupports(code: Int) {
        #expect(throws: IstioError.unsupportedRedirectCode(code)) {
            try IstioPlan(mode: .redirect, service: "checkout", redirectCode: code, tunnel: tunnel)
        }
    }

    @Test(arguments: [0, -5, 100.5, 0.00001, .nan, .infinity])
    func mirrorPercentMustBeAShare(percent: Double) {
        #expect(throws: IstioError.self) {
            try IstioPlan(mode: .mirror, service: "checkout", mirrorPercent: percent, tunnel: tunnel)
        }
    }

    @Test(arguments: [100, 0.0001, 50])
    func mirrorPercentInRange(percent: Double) throws {
        _ = try IstioPlan(mode: .mirror, service: "checkout", mirrorPercent: percent, tunnel: tunnel)
    }
}

@Suite("Tunnel endpoint")
struct TunnelEndpointTests {
    @Test(
        arguments: [
            ("tunnel.example.com", TunnelEndpoint.Scheme.https, "tunnel.example.com", 443, "tunnel.example.com"),
            ("Tunnel.Example.COM:8443", .https, "tunnel.example.com", 8443, "tunnel.example.com:8443"),
            ("tunnel.example.com:443", .https, "tunnel.example.com", 443, "tunnel.example.com"),
            ("tunnel.example.com", .http, "tunnel.example.com", 80, "tunnel.example.com"),
            ("relay:8080", .http, "relay", 8080, "relay:8080"),
            ("203.0.113.7:8080", .http, "203.0.113.7", 8080, "203.0.113.7:8080"),
            ("[2001:db8::1]:8443", .https, "2001:db8::1", 8443, "[2001:db8::1]:8443"),
            ("[2001:DB8::1]", .https, "2001:db8::1", 443, "[2001:db8::1]"),
            ("2001:db8::1", .http, "2001:db8::1", 80, "[2001:db8::1]"),
        ]
    )
    func parsesAuthorities(
        input: String,
        scheme: TunnelEndpoint.Scheme,
        host: String,
        port: Int,
        authority: String
    ) throws {
        let endpoint = try TunnelEndpoint(authority: input, scheme: scheme)
        #expect(endpoint.host == host)
        #expect(endpoint.port == port)
        #expect(endpoint.authority == authority)
        #expect(endpoint.usesDefaultPort == (port == scheme.defaultPort))
    }

    @Test func knowsIPAddresses() throws {
        #expect(try TunnelEndpoint(authority: "203.0.113.7").isIPAddress)
        #expect(try TunnelEndpoint(authority: "[::1]").isIPAddress)
        #expect(try !TunnelEndpoint(authority: "tunnel.example.com").isIPAddress)
    }

    @Test(
        arguments: [
            ("https://tunnel.example.com", "URL"),
            ("tunnel.example.com/path", "path"),
            ("tunnel.example.com:", "not a port number"),
            ("tunnel.example.com:http", "not a port number"),
            ("tunnel.example.com:0", "0 is not a port number"),
            ("tunnel.example.com:65536", "65536 is not a port number"),
            ("tunnel_1.example.com", "'_'"),
            ("300.1.2.3", "not a valid one"),
            ("[2001:db8::1", "closing ']'"),
            ("[2001:db8::1]x", "':PORT'"),
            ("2001:db8::zz", "IPv6"),
            ("", "empty"),
            (":8080", "empty"),
            ("user@tunnel.example.com", "user information"),
        ]
    )
    func refusesBadAuthorities(input: String, fragment: String) throws {
        let text = try #require(
            message { () throws(IstioError) in _ = try TunnelEndpoint(authority: input) }
        )
        #expect(text.contains(fragment))
    }
}

@Suite("Header match")
struct HeaderMatchTests {
    @Test(
        arguments: [
            ("x-user=debug", "x-user", HeaderMatch.Kind.exact, "debug"),
            ("x-user^=dev-", "x-user", .prefix, "dev-"),
            ("x-user~^dev-.*", "x-user", .regex, "^dev-.*"),
            ("X-User=Debug", "x-user", .exact, "Debug"),
            ("x-user=a=b~c", "x-user", .exact, "a=b~c"),
            ("x-user~a=b", "x-user", .regex, "a=b"),
            ("x-user^=^x", "x-user", .prefix, "^x"),
            ("x_b3.id=1", "x_b3.id", .exact, "1"),
        ]
    )
    func parses(text: String, name: String, kind: HeaderMatch.Kind, value: String) throws {
        let match = try HeaderMatch(parsing: text)
        #expect(match.name == name)
        #expect(match.kind == kind)
        #expect(match.value == value)
        #expect(try HeaderMatch(parsing: match.description) == match)
    }

    @Test(
        arguments: [
            ("x-user", "no '='"),
            ("x-user=", "value is empty"),
            ("x-user^=", "value is empty"),
            ("x-user~", "value is empty"),
            ("=debug", "name is empty"),
            ("x user=debug", "not allowed in an HTTP header name"),
            (":authority=x", "not allowed in an HTTP header name"),
            ("x^y=1", "reserves"),
            ("authority=x", "ignores"),
            ("x-user= debug", "whitespace"),
            ("x-user~(abc", "does not compile"),
            ("x-user~[a-", "does not compile"),
            ("x-user~^(?!admin)", "negative lookahead"),
            ("x-user~(a)\\1", "backreference"),
            ("x-user=a\u{7}b", "control characters"),
        ]
    )
    func refuses(text: String, fragment: String) throws {
        let error = try #require(message { () throws(IstioError) in _ = try HeaderMatch(parsing: text) })
        #expect(error.contains("'\(text)'"))
        #expect(error.contains(fragment))
    }

    @Test func escapedBackslashIsNotABackreference() throws {
        _ = try HeaderMatch(parsing: "x-path~a\\\\1")
    }
}
