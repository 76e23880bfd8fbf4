import NIOCore
import NIOPosix

/// Finds a loopback port that was free a moment ago, for servers that must be given
/// a fixed port (a relay's dedicated tunnel ports, nghttpd).
public enum ServerBootstrapProbe {
    public static func bind() async throws -> Int {
        let probe = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress!.port!
        try await probe.close()
        return port
    }
}
