import PinholeCore
import Testing

@Suite("Service alias")
struct ServiceAliasTests {
    @Test(
        arguments: [
            ("checkout", "checkout", nil as String?),
            ("checkout:3000", "checkout", nil),
            ("checkout-shadow:3000", "checkout", nil),
            ("checkout-shadow", "checkout", nil),
            ("checkout.shop", "checkout", "shop"),
            ("checkout.shop:8080", "checkout", "shop"),
            ("checkout.shop-shadow:8080", "checkout", "shop"),
            ("checkout.shop.svc", "checkout", "shop"),
            ("checkout.shop.svc.cluster.local", "checkout", "shop"),
            ("checkout.shop.svc.cluster.local:80", "checkout", "shop"),
            ("checkout.shop.svc.cluster.local-shadow:80", "checkout", "shop"),
            ("checkout.shop.svc.cluster.local.", "checkout", "shop"),
            ("CheckOut.SHOP:3000", "checkout", "shop"),
        ]
    )
    func parsesServiceHosts(host: String, service: String, namespace: String?) throws {
        let shapes = ServiceAlias.shapes(ofHost: host)
        #expect(shapes.contains { $0.service == service && $0.namespace == namespace }, "\(shapes)")
    }

    @Test(
        arguments: [
            "",
            ":3000",
            "checkout:",
            "checkout:http",
            "checkout:123456",
            "203.0.113.7",
            "203.0.113.7:8080",
            "10.0",
            "[::1]",
            "[2001:db8::1]:3000",
            "2001:db8::1",
            "demo.tunnel.example.com",
            "checkout.shop.svc.example.internal",
            "checkout.shop.cluster.local",
            "checkout.shop.svc.cluster",
            "a.b.c.d.e.f",
            "checkout..svc",
            "my_service",
            "9lives",
            "-shadow",
        ]
    )
    func ignoresHostsThatAreNotAliases(host: String) {
        #expect(ServiceAlias.shapes(ofHost: host).isEmpty)
    }

    @Test func matchesItsServiceInItsNamespaceOrWithoutOne() throws {
        let alias = try ServiceAlias(service: "checkout", namespace: "shop")
        for host in [
            "checkout", "checkout:3000", "checkout-shadow:3000", "CHECKOUT", "checkout.shop",
            "checkout.shop.svc", "checkout.shop.svc.cluster.local:80", "checkout.shop.svc.cluster.local-shadow",
        ] {
            #expect(alias.matches(host: host), "\(host)")
        }
        for host in [
            "checkout.billing", "checkout.billing.svc.cluster.local", "cart", "cart-shadow", "checkoutx",
            "203.0.113.7", "[::1]:3000", "checkout.example.com", "tunnel.example.com",
        ] {
            #expect(!alias.matches(host: host), "\(host)")
        }
    }

    @Test func serviceNamedLikeAShadowStillMatchesItself() throws {
        let alias = try ServiceAlias(service: "x-shadow", namespace: "default")
        #expect(alias.matches(host: "x-shadow:3000"))
        #expect(alias.matches(host: "x-shadow-shadow:3000"))
        #expect(!alias.matches(host: "x:3000"))
    }

    @Test func defaultNamespaceAndDescription() throws {
        let alias = try ServiceAlias(service: "checkout")
        #expect(alias.namespace == "default")
        #expect(alias.description == "checkout.default")
        #expect(alias.matches(host: "checkout.default.svc.cluster.local"))
        #expect(!alias.matches(host: "checkout.shop"))
    }

    @Test func shapesOfAHostAsWrittenAndWithoutShadow() throws {
        let shapes = ServiceAlias.shapes(ofHost: "checkout.shop.svc.cluster.local-shadow:3000")
        #expect(shapes.count == 1 && shapes[0].service == "checkout" && shapes[0].namespace == "shop")
        // A Service really named with a double hyphen before "shadow": the name as written
        // is a shape; without the suffix ("a-") it is not a valid name.
        let doubled = ServiceAlias.shapes(ofHost: "a--shadow")
        #expect(doubled.map(\.service) == ["a--shadow"])
        #expect(try ServiceAlias(service: "a--shadow").matches(shapes: doubled))
        #expect(ServiceAlias.shapes(ofHost: "10.0.0.1:80").isEmpty)
        #expect(ServiceAlias.shapes(ofHost: "demo.tunnel.example.com").isEmpty)
    }

    @Test func descriptionReadsBack() throws {
        let alias = try ServiceAlias(service: "checkout", namespace: "shop")
        #expect(try ServiceAlias(description: alias.description) == alias)
        #expect(try ServiceAlias(description: "checkout") == ServiceAlias(service: "checkout"))
        #expect(throws: InvalidName.self) { try ServiceAlias(description: "") }
        #expect(throws: InvalidName.self) { try ServiceAlias(description: "checkout.Shop") }
    }

    @Test func refusesInvalidNames() {
        #expect(throws: InvalidName.self) { try ServiceAlias(service: "My_Service") }
        #expect(throws: InvalidName.self) { try ServiceAlias(service: "checkout", namespace: "-bad") }
    }
}
