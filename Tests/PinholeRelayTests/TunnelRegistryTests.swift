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
        #expect(register("c", in: registry) == .failure(Refused(message: "every port in 5000-5001 is taken")))
        #expect(register("a", in: registry) == .success(5000), "a reconnecting gets its port back")
    }

    @Test("a port the relay could not listen on is released: its name gets another next time")
    func releasedPortIsReassigned() {
        let registry = TunnelRegistry(
            domain: nil, tunnelPorts: 5000...5002, maxTunnels: 10, reservation: .seconds(60))
        #expect(register("a", in: registry) == .success(5000))
        registry.releasePort(5000)
        #expect(register("b", in: registry) == .success(5000))
        #expect(register("a", in: registry) == .success(5001))
    }
}
