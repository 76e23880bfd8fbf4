import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Sends exchanges to the target over pooled HTTP/1.1 keep-alive connections.
///
/// Each event loop has its own pool, and an exchange always uses the pool of its
/// downstream's loop, so a request never hops threads on its way to the target.
public final class TargetClient: ExchangeTarget {
    public let address: TargetAddress
    private let connectTimeout: TimeAmount
    /// Taken for every request, from every event loop: a `Mutex` (see `InspectorStore.state`).
    private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<TargetPool>]>([:])

    public init(address: TargetAddress, connectTimeout: TimeAmount = .seconds(5)) {
        self.address = address
        self.connectTimeout = connectTimeout
    }

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        let exchange = TargetExchange(head: head, downstream: downstream, target: address)
        pool(for: eventLoop).assign(exchange)
        return exchange
    }

    private func pool(for eventLoop: any EventLoop) -> TargetPool {
        let key = ObjectIdentifier(eventLoop)
        if let existing = pools.withLock({ $0[key] }) { return existing.value }
        let pool = TargetPool(address: address, eventLoop: eventLoop, connectTimeout: connectTimeout)
        pools.withLock { $0[key] = NIOLoopBound(pool, eventLoop: eventLoop) }
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

    /// Gives `exchange` an idle connection, or opens one for it.
    func assign(_ exchange: TargetExchange) {
        while let connection = idle.popLast() {
            if connection.isReusable {
                exchange.connection = connection
                connection.start(exchange)
                return
            }
        }
        open(for: exchange, ended: false)
    }

    /// Sends `exchange` again, on a fresh connection: a pooled one was dead before the
    /// request reached the target. `ended`: the request's end had come.
    func retry(_ exchange: TargetExchange, ended: Bool) {
        open(for: exchange, ended: ended)
    }

    private func open(for exchange: TargetExchange, ended: Bool) {
        let connection = TargetConnection(pool: self, opening: exchange, ended: ended)
        exchange.connection = connection
        ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .connect(host: address.host, port: address.port)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    // TargetConnection speaks HTTP/1.1 itself. Request headers come from the
                    // public side through nghttp2 or our request parser, which validated them.
                    do {
                        try channel.pipeline.syncOperations.addHandler(connection)
                    } catch {
                        connection.connectFailed(reason: "the connection could not be set up")
                        channel.close(promise: nil)
                    }
                case .failure(let error):
                    connection.connectFailed(reason: ConnectionErrorText.describe(error))
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
