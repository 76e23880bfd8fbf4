import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends exchanges to the target over pooled HTTP/1.1 keep-alive connections.
///
/// Each event loop has its own pool, and an exchange always uses the pool of its
/// downstream's loop, so a request never hops threads on its way to the target.
public final class TargetClient: ExchangeTarget {
    public let address: TargetAddress
    private let connectTimeout: TimeAmount
    /// Fields added to every response of the target (`x-pinhole-tunnel`), replacing any the
    /// target sent under the same names.
    private let responseFields: [(name: String, value: String)]
    private let pools = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<TargetPool>]>([:])

    public init(
        address: TargetAddress, connectTimeout: TimeAmount = .seconds(5),
        responseFields: [(name: String, value: String)] = []
    ) {
        self.address = address
        self.connectTimeout = connectTimeout
        self.responseFields = responseFields
    }

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        let exchange = TargetExchange(
            head: head, downstream: downstream, target: address, responseFields: responseFields)
        pool(for: eventLoop).assign(exchange, mayRetry: true)
        return exchange
    }

    private func pool(for eventLoop: any EventLoop) -> TargetPool {
        let key = ObjectIdentifier(eventLoop)
        if let existing = pools.withLockedValue({ $0[key] }) { return existing.value }
        let pool = TargetPool(address: address, eventLoop: eventLoop, connectTimeout: connectTimeout)
        pools.withLockedValue { $0[key] = NIOLoopBound(pool, eventLoop: eventLoop) }
        return pool
    }
}

/// One event loop's idle connections to the target.
final class TargetPool {
    let address: TargetAddress
    let eventLoop: any EventLoop
    private let connectTimeout: TimeAmount
    private var idle: [TargetConnection] = []
    // Enough for a burst of a thousand concurrent requests to find its connections
    // again; below that, every request past the limit opened a new one.
    private static let maximumIdle = 1024

    init(address: TargetAddress, eventLoop: any EventLoop, connectTimeout: TimeAmount) {
        self.address = address
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
    }

    /// Gives `exchange` an idle connection, or opens one. `mayRetry` is passed along
    /// so a reused connection that turns out to be closed can try once more.
    func assign(_ exchange: TargetExchange, mayRetry: Bool) {
        while let connection = idle.popLast() {
            if connection.isReusable {
                connection.begin(exchange, reused: mayRetry)
                return
            }
        }
        let pool = NIOLoopBound(self, eventLoop: eventLoop)
        let connecting = ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // TargetConnection speaks HTTP/1.1 itself. Request headers come from the
                    // public side through nghttp2 or our request parser, which validated them.
                    try channel.pipeline.syncOperations.addHandler(TargetConnection(pool: pool.value))
                }
            }
            .connect(host: address.host, port: address.port)
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: TargetConnection.self) else {
                    exchange.failToStart(reason: "the connection could not be set up")
                    return
                }
                // Cancelled while connecting (its client gone, or timed out): nothing is
                // sent, and the fresh connection waits in the pool for the next request.
                guard !exchange.finished else {
                    self.release(connection)
                    return
                }
                connection.begin(exchange, reused: false)
            case .failure(let error):
                exchange.failToStart(reason: ConnectionErrorText.describe(error))
            }
        }
    }

    func release(_ connection: TargetConnection) {
        if idle.count < Self.maximumIdle, connection.isReusable {
            idle.append(connection)
        } else {
            connection.close()
        }
    }

    func forget(_ connection: TargetConnection) {
        idle.removeAll { $0 === connection }
    }
}
