/// The settings one end of an HTTP/2 connection advertises, and its local limits.
public struct HTTP2Configuration: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we accept from the peer. The peer's own value
    /// limits the streams we open (nghttp2 queues requests beyond it).
    public var maxConcurrentStreams: Int = 1024
    /// SETTINGS_INITIAL_WINDOW_SIZE: how much a stream may receive before its consumer
    /// takes the data. This bounds the memory a stalled consumer can pin, and a
    /// stream's throughput to a window per round trip: at 256 KiB, uploads through the
    /// tunnel stalled near 370 MB/s on loopback; at 1 MiB they reached 500-700 MB/s.
    public var streamWindowSize: Int = 1024 * 1024
    /// SETTINGS_MAX_FRAME_SIZE we accept; larger frames are a FRAME_SIZE_ERROR.
    public var maxFrameSize: Int = 64 * 1024
    /// SETTINGS_MAX_HEADER_LIST_SIZE; a larger header block resets its stream.
    public var maxHeaderListSize: Int = 64 * 1024
    /// RST_STREAM frames the peer may send at once, then each second, before the
    /// connection is ended (nghttp2's guard against rapid reset, CVE-2023-44487; it
    /// applies to the server side, the agent). nghttp2's own 1,000 then 33 a second
    /// ended tunnels: the relay cancels a stream whenever a public client gives up, and
    /// 1,200 aborted uploads were enough. These allow far more than public clients can
    /// make a relay cancel, and still stop a peer that opens and cancels streams in an
    /// endless loop.
    public var streamResetBurst: Int = 100_000
    public var streamResetsPerSecond: Int = 10_000
    /// Completed messages sent together before the end of an event-loop tick (see
    /// `HTTP2Connection.completedMessage`). One write per tick made the relay, the agent
    /// and the target take turns on the same batch (with `wrk -c50` the machine sat 60%
    /// idle); one write per message costs a TLS record and a syscall each. Batches of
    /// a few kept both cores busy and gave about 18% more requests per second than
    /// either; 4 and 8 measured the same within this machine's noise. 32 against 8,
    /// relay + agent, alternating rounds: `h2load -c10 -m10` (100 streams, so a tick ends
    /// many) gave more requests per second in 5 rounds of 6 (about 12% in the last 3);
    /// `wrk -c50` over HTTP/1.1 the same requests per second, for about 10% less CPU in
    /// both processes. `Int.max` sends once per tick only: right where the peer is not
    /// the next stage of our own pipeline (a public client, an h2c app) and each write is
    /// a syscall it pays for too.
    public var messagesPerWrite: Int = 32
    /// A stream reports itself unwritable once this much of its outgoing data waits.
    public var streamWriteBufferHighWatermark: Int = 128 * 1024
    /// ... and writable again when the wait drops below this.
    public var streamWriteBufferLowWatermark: Int = 32 * 1024

    public init() {}
}
