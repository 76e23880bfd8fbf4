import NIOCore
import NIOPosix
import PinholeCore
import PinholeHTTP2
import Synchronization

/// An app that speaks HTTP/2 with prior knowledge (`--app-protocol h2c`, a TARGET
/// `h2c://HOST:PORT`): gRPC servers, and other HTTP/2 servers. Each request becomes one
/// stream, so trailers and resets pass both ways as they are.
///
/// Each event loop keeps one connection to the app, used by the requests whose
/// downstream runs on that loop, so a request never hops threads on its way.
public final class H2CAppTarget: ExchangeTarget {
    public let address: TargetAddress
    private let connectTimeout: TimeAmount
    private let configuration: HTTP2Configuration
    /// Taken for every request, from every event loop: a `Mutex` (see `InspectorStore.state`).
    private let connections = Mutex<[ObjectIdentifier: NIOLoopBound<AppConnection>]>([:])

    public init(
        address: TargetAddress, connectTimeout: TimeAmount = .seconds(5),
        configuration: HTTP2Configuration = H2CAppTarget.configuration
    ) {
        self.address = address
        self.connectTimeout = connectTimeout
        self.configuration = configuration
    }

    /// The app connection's settings: frames go out once per event-loop tick (see
    /// `HTTP2Configuration.messagesPerWrite`). The requests of one tick then cost the app
    /// one read; with batches of 8, h2load through the embedded relay measured about 1.5×
    /// slower, each batch a write of its own.
    public static var configuration: HTTP2Configuration {
        var configuration = HTTP2Configuration()
        configuration.messagesPerWrite = .max
        return configuration
    }

    public func startExchange(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on eventLoop: any EventLoop
    ) throws(ExchangeError) -> any ExchangeUpstream {
        try connection(for: eventLoop).start(head, downstream: downstream)
    }

    private func connection(for eventLoop: any EventLoop) -> AppConnection {
        let key = ObjectIdentifier(eventLoop)
        if let existing = connections.withLock({ $0[key] }) { return existing.value }
        let connection = AppConnection(
            address: address, eventLoop: eventLoop, connectTimeout: connectTimeout, configuration: configuration)
        connections.withLock { $0[key] = NIOLoopBound(connection, eventLoop: eventLoop) }
        return connection
    }
}

/// One event loop's HTTP/2 connection to the app; its lifecycle is
/// `AppConnectionStateMachine`'s, and this class carries out the actions.
final class AppConnection {
    typealias Machine = AppConnectionStateMachine<HTTP2Connection, DeferredUpstream>

    private let address: TargetAddress
    /// The app as errors name it, made once: building it for every request showed in profiles.
    private let peer: StreamPeer
    private let eventLoop: any EventLoop
    private let connectTimeout: TimeAmount
    private let configuration: HTTP2Configuration
    private var machine = Machine()

    init(
        address: TargetAddress, eventLoop: any EventLoop, connectTimeout: TimeAmount, configuration: HTTP2Configuration
    ) {
        self.address = address
        self.peer = .app(target: address.description)
        self.eventLoop = eventLoop
        self.connectTimeout = connectTimeout
        self.configuration = configuration
    }

    func start(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream
    ) throws(ExchangeError)
        -> any ExchangeUpstream
    {
        // HTTP/2 carries no Upgrade (RFC 9113 §8.6): a WebSocket handshake goes on as a
        // plain request. Only such a request is copied (a copy retains each of its fields).
        guard head.upgrade == nil else {
            var plain = head
            plain.upgrade = nil
            return try start(plain, downstream: downstream)
        }
        var waiter: DeferredUpstream?
        let action = machine.requestArrived(
            {
                let made = DeferredUpstream(head: head, downstream: downstream)
                waiter = made
                return made
            }())
        if case .open(let connection, let generation) = action {
            return try open(head, downstream: downstream, on: connection, generation: generation)
        }
        perform(action)
        return waiter!
    }

    private func open(
        _ head: ProxyRequestHead, downstream: any ExchangeDownstream, on connection: HTTP2Connection, generation: Int
    ) throws(ExchangeError) -> any ExchangeUpstream {
        do {
            let upstream = try TunnelStreamUpstream.start(
                head, downstream: downstream, connection: connection, peer: peer)
            // Its HEADERS are with the app's connection, written this tick: the inspector's
            // "queued" time ends here, as when an HTTP/1.1 request's head is written.
            downstream.exchangeRequestDelivered()
            return upstream
        } catch {
            // Closed or draining: the next request connects again.
            perform(machine.connectionEnded(generation: generation))
            throw error
        }
    }

    private func perform(_ action: Machine.Action) {
        switch action {
        case .none:
            break
        case .open:
            break  // handled by `start`, which has the request
        case .connect(let generation):
            connect(generation: generation)
        case .openWaiting(let waiting, let connection, let generation):
            for waiter in waiting where !waiter.isCancelled {
                guard let downstream = waiter.downstream else { continue }
                do throws(ExchangeError) {
                    waiter.attach(try open(waiter.head, downstream: downstream, on: connection, generation: generation))
                } catch {
                    waiter.fail(error)
                }
            }
        case .failWaiting(let waiting, let reason):
            let error = ExchangeError.targetUnreachable(target: address.description, reason: reason)
            for waiter in waiting { waiter.fail(error) }
        case .close(let connection):
            connection.goAwayAndClose()
        }
    }

    private func connect(generation: Int) {
        let owner = NIOLoopBound(self, eventLoop: eventLoop)
        let configuration = self.configuration
        let connecting = ClientBootstrap(group: eventLoop)
            .channelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = HTTP2ConnectionHandler(
                        role: .client, eventLoop: channel.eventLoop, configuration: configuration)
                    try channel.pipeline.syncOperations.addHandlers([
                        handler,
                        AppConnectionWatcher {
                            owner.value.perform(owner.value.machine.connectionEnded(generation: generation))
                        },
                    ])
                }
            }
            .connect(host: address.host, port: address.port)
        connecting.assumeIsolated().whenComplete { result in
            let this = owner.value
            switch result {
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: HTTP2ConnectionHandler.self)
                else {
                    this.perform(this.machine.connectFailed(generation: generation, reason: "the connection closed"))
                    return
                }
                this.perform(this.machine.connected(generation: generation, handler.connection))
            case .failure(let error):
                this.perform(
                    this.machine.connectFailed(generation: generation, reason: ConnectionErrorText.describe(error)))
            }
        }
    }
}

@available(*, unavailable)
extension AppConnection: Sendable {}

/// Tells the app connection's owner when the connection stops taking new streams: the
/// app sent GOAWAY, or the connection closed. Errors close it.
final class AppConnectionWatcher: ChannelInboundHandler {
    typealias InboundIn = Never
    private var onEnd: (() -> Void)?

    init(onEnd: @escaping () -> Void) {
        self.onEnd = onEnd
    }

    private func end() {
        let onEnd = self.onEnd
        self.onEnd = nil
        onEnd?()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is HTTP2ConnectionEvent { end() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        end()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }
}
