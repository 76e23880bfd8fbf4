import Glibc
import NIOCore
import NIOPosix

/// Finds a loopback port that was free a moment ago, for servers that must be given
/// a fixed port (a relay's dedicated tunnel ports, nghttpd). It is picked below the
/// kernel's ephemeral range (32768 and up on Linux): a port the kernel handed out would
/// be handed out again, to another test's outgoing connection say, before the server
/// binds it, and that test's relay then refused its agent's hello (a CI failure).
public enum ServerBootstrapProbe {
    static let ports = 20_000..<32_768

    public static func bind() async throws -> Int {
        var lastError: (any Error)?
        for _ in 0..<64 {
            let port = Int.random(in: ports)
            do {
                let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .bind(host: "127.0.0.1", port: port).get()
                try await probe.close()
                return port
            } catch {
                lastError = error  // taken: try another
            }
        }
        throw lastError ?? ChildProcess.Failure(description: "no free port in \(ports)")
    }
}

/// A loopback port that refuses connections for as long as this lives: bound, so no
/// other server (another test's) can take it, and never listening, so a connection to
/// it is refused. A port merely free a moment ago could be taken in between.
public final class RefusingPort: Sendable {
    public let port: Int
    private let descriptor: Int32

    public init() throws {
        let socketKind = Int32(SOCK_STREAM.rawValue)
        let descriptor = socket(AF_INET, socketKind, 0)
        guard descriptor >= 0 else { throw ChildProcess.Failure(description: "socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                Glibc.bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else {
            close(descriptor)
            throw ChildProcess.Failure(description: "bind() failed: errno \(errno)")
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit {
        close(descriptor)
    }
}
