import Foundation
import Logging
import NIOCore
import NIOPosix
import PinholeCore
import Testing

@testable import PinholeRelay

@Suite("Registry file: names, aliases and ports keep their owners across restarts")
struct RegistryFileTests {
    let alice = TokenDigest(token: "alice-token-0123456789")
    let bob = TokenDigest(token: "bob-token-0123456789")
    let path: String

    init() throws {
        let folder = NSTemporaryDirectory() + "pinhole-registry-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        path = folder + "/registry.json"
    }

    /// A relay's registry on the file, restored as a start does it.
    private func start(owners: Set<TokenDigest>? = nil, ports: ClosedRange<Int> = 5000...5002) throws -> RegistryDriver
    {
        let registry = TunnelRegistry(
            domain: nil, tunnelPorts: ports, limits: .init(reservation: .zero),
            file: RegistryFile(path: path, logger: Logger(label: "test")))
        _ = try registry.restore(
            RegistryFile(path: path, logger: Logger(label: "test")).load(), owners: owners ?? [alice, bob])
        try registry.writeNow()
        return RegistryDriver(registry: registry)
    }

    @Test("after a restart each name has its own port back, and another token gets neither name nor port")
    func restartKeepsOwners() throws {
        let first = try start()
        #expect(first.visit("a", owner: alice, aliases: ["payments.prod"]) == .success(5000))
        #expect(first.port("b", owner: alice) == .success(5001), "still connected when the relay dies")
        try first.registry.flushed(on: MultiThreadedEventLoopGroup.singleton.next()).wait()

        let second = try start()
        #expect(second.refusal(second.port("a", owner: bob))?.reason == .nameTaken)
        #expect(second.refusal(second.port("b", owner: bob))?.reason == .nameTaken)
        #expect(second.refusal(second.port("c", owner: bob, aliases: ["payments.prod"]))?.reason == .nameTaken)
        #expect(second.port("c", owner: bob) == .success(5002), "only the port nobody owns")
        #expect(second.port("b", owner: alice) == .success(5001))
        #expect(second.port("a", owner: alice) == .success(5000))
    }

    @Test("the file holds digests, never a token, and is private to the relay")
    func noTokens() throws {
        let relay = try start()
        _ = relay.visit("a", owner: TokenDigest(token: "the-secret-token-0123456789"))
        try relay.registry.flushed(on: MultiThreadedEventLoopGroup.singleton.next()).wait()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("the-secret-token"))
        #expect(text.contains(TokenDigest(token: "the-secret-token-0123456789").hex))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("names of a token the relay no longer accepts are forgotten at start")
    func removedTokenForgotten() throws {
        let first = try start()
        #expect(first.visit("a", owner: alice) == .success(5000))
        try first.registry.flushed(on: MultiThreadedEventLoopGroup.singleton.next()).wait()
        let second = try start(owners: [bob])
        #expect(second.port("a", owner: bob) == .success(5000))
    }

    @Test("ports outside a new --tunnel-ports are dropped; the name stays its token's")
    func portsOutsideTheRange() throws {
        let first = try start()
        #expect(first.visit("a", owner: alice) == .success(5000))
        try first.registry.flushed(on: MultiThreadedEventLoopGroup.singleton.next()).wait()
        let second = try start(ports: 6000...6001)
        #expect(second.refusal(second.port("a", owner: bob))?.reason == .nameTaken)
        #expect(second.port("a", owner: alice) == .success(6000))
    }

    @Test("a corrupt file stops the start with an error naming it")
    func corruptFile() throws {
        try "{\"version\": 1, \"tunnels\": [{\"name\": 3}]".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try start()
            Issue.record("a corrupt file was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains(path) && message.contains("corrupt") && message.contains("move it away"))
        }
    }

    @Test("a record that cannot be right (a name twice) is an error naming the tunnel")
    func nameTwice() throws {
        let record = """
            {"name": "a", "owner": "\(alice.hex)", "aliases": [], "lastUsed": "2024-01-01T00:00:00Z", "connected": false}
            """
        try "{\"version\": 1, \"tunnels\": [\(record), \(record)]}".write(
            toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RelayError.self) { _ = try start() }
    }
}
