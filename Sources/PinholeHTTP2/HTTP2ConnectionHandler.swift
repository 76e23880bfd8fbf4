import NIOCore

/// The channel handler for one HTTP/2 connection. It sits on top of the byte stream
/// (plain TCP for h2c, or above `TLSHandler`) and exposes the connection's streams
/// through `connection`; it passes nothing further up but connection-level events.
public final class HTTP2ConnectionHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = Never
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    public let connection: HTTP2Connection

    /// `streamAcceptor` is required for the server role: it gets each new stream
    /// (before its headers are delivered) and returns the stream's delegate.
    public init(
        role: HTTP2Role, eventLoop: any EventLoop, configuration: HTTP2Configuration = HTTP2Configuration(),
        streamAcceptor: ((HTTP2Stream) -> any HTTP2StreamDelegate)? = nil
    ) {
        connection = HTTP2Connection(
            role: role, configuration: configuration, eventLoop: eventLoop, streamAcceptor: streamAcceptor)
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        do {
            try connection.start(context: context)
        } catch {
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        connection.receive(unwrapInboundIn(data))
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        connection.channelReadComplete()
        context.fireChannelReadComplete()
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        connection.writabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        connection.tearDown()
        context.fireChannelInactive()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        connection.tearDown()
    }
}

@available(*, unavailable)
extension HTTP2ConnectionHandler: Sendable {}
