import NIOCore
import Testing

@testable import PinholeRelay

@Suite("Tunnel registry: names and dedicated ports")
struct TunnelRegistryTests {
    private let owner = TokenDigest(token: "token")

    /// The dedicated port a registration got, or the refusal's text.
    private func register(_ name: String, in registry: TunnelRegistry) -> Result<Int, Refused> {
        switch registry.register(name: name, aliases: [], owner: owner) {
        case .accepted(let entry, _): .success(entry.port ?? -1)
        case .refused(_, let message): .failure(Refused(message: message))
        }
    }

    struct Refused: Error, Equatable {
        let message: String
    }

    @Test("a name that is gone gives its port to a new name once every port has been used")
    func portsOfGoneNamesAreReused() {
        // No reservation: a name that is not connected is gone at the next registration.
        let registry = TunnelRegistry(domain: nil, tunnelPorts: 5000...5001, maxTunnels: 10, reservation: .zero)
        #expect(register("a", in: registry) == .success(5000))
        #expect(register("b", in: registry) == .success(5001))
        // Before, the relay refused every new name from here on: "every port in 5000-5001 is taken".
        #expect(register("c", in: registry) == .success(5000))
        // c is gone again by now, so a gets the first port back, not an error.
        #expect(register("a", in: registry) == .success(5000))
    }

    @Test("names still reserved keep their ports, and a new name is refused while they do")
    func reservedNamesKeepTheirPorts() {
        let registry = TunnelRegistry(
            domain: nil, tunnelPorts: 5000...5001, maxTunnels: 10, reservation: .seconds(60))
        #expect(register("a", in: registry) == .success(5000))
        #expect(register("b", in: registry) == .success(5001))
        #expect(
            register("c", in: registry)
                == .failure(
                    Refused(
                        message: "every port in 5000-5001 is in use: 2 held for tunnels whose agent disconnected "
                            + "(a tunnel keeps its port for 1 min, to come back at the same address); "
                            + "widen --tunnel-ports, or wait for a held port to be freed")))
        #expect(register("a", in: registry) == .success(5000), "a reconnecting gets its port back")
    }

    @Test("a port another program holds is skipped: its name gets the next one, and no one gets it for a while")
    func busyPortIsSkipped() {
        let registry = TunnelRegistry(
            domain: nil, tunnelPorts: 5000...5002, maxTunnels: 10, reservation: .seconds(60))
        #expect(register("a", in: registry) == .success(5000))
        registry.portUnavailable(5000)
        #expect(register("a", in: registry) == .success(5001), "the same name, on its next attempt")
        #expect(register("b", in: registry) == .success(5002))
        #expect(
            register("c", in: registry)
                == .failure(
                    Refused(
                        message: "every port in 5000-5002 is in use: 2 held for tunnels whose agent disconnected "
                            + "(a tunnel keeps its port for 1 min, to come back at the same address), "
                            + "1 by other programs; widen --tunnel-ports, or wait for a held port to be freed")))
    }

    @Test("refusals say which reason: no free port is not too many tunnels")
    func refusalReasons() {
        let registry = TunnelRegistry(domain: nil, tunnelPorts: 5000...5000, maxTunnels: 10, reservation: .seconds(60))
        #expect(register("a", in: registry) == .success(5000))
        guard case .refused(let reason, _) = registry.register(name: "b", aliases: [], owner: owner) else {
            Issue.record("b was not refused")
            return
        }
        #expect(reason == .noFreePort)
    }
}
