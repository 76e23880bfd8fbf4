// The vocabulary of `HTTP2ConnectionStateMachine`: its four parts' enums, and the
// actions it asks `HTTP2Connection` to carry out.

extension HTTP2ConnectionStateMachine {
    enum State: Equatable {
        /// The channel is not active yet and there is no session: work waits for it.
        case starting
        /// Streams open and run both ways.
        case active
        /// GOAWAY went one way or both: streams in flight finish, none start, and the
        /// connection closes once the last one ends.
        case draining(Drain)
        /// A connection error: what nghttp2 still holds (its GOAWAY) goes out, then the
        /// error is reported and the channel closes.
        case terminating(HTTP2Error)
        /// Over: nil after an orderly close, else the error that ended it.
        case closed(HTTP2Error?)
    }

    /// Which GOAWAY frames started the drain.
    enum Drain: Equatable {
        case sent, received, sentAndReceived
    }

    enum Output: Equatable {
        /// Nothing waits.
        case idle
        /// Frames wait, and whoever is on the stack sends them before returning: the end
        /// of the read in progress, or the flush whose pass is running.
        case pending
        /// A flush task is queued on the event loop; `pending` says whether frames still
        /// wait for it (a flush may have sent them in between).
        case scheduled(pending: Bool)
        /// The channel is not writable: `channelWritabilityChanged` resumes sending.
        case blocked
    }

    enum SessionCall: Equatable {
        /// nghttp2 is not on the stack; nor is the delivery loop.
        case none
        /// Inside `mem_recv` or `session_send`: callbacks only record.
        case running
        /// Recorded events are being delivered; delegates may call anything.
        case delivering
        /// A delegate's call reached nghttp2 again while events were being delivered.
        /// What it records is picked up by the delivery loop already running.
        case runningWhileDelivering
    }

    enum Input: Equatable {
        case idle
        /// Between `channelRead` and `channelReadComplete`.
        case reading
    }

    enum Action: Equatable {
        case none
        /// Feed the bytes read to nghttp2.
        case receive
        /// Queue the operation; it runs once nghttp2 returns (or the session starts).
        case deferOperation
        /// Run the operation on the session now, then ask for a send.
        case executeOperation
        /// Fail the request with this error.
        case refuse(HTTP2Error)
        /// Queue one flush task on the event loop.
        case scheduleFlush
        /// Flush now (`flushStarted` decides whether a send pass runs).
        case flush
        /// Run one `nghttp2_session_send` and write what it produced.
        case sendPass
        /// Flush the channel: what send passes wrote goes out.
        case flushWrites
        /// Run deferred operations and deliver recorded events until both queues are empty.
        case deliverEvents
        /// The session exists: run what waited for it, then flush (our SETTINGS, the preface).
        case deliverEventsAndFlush
        /// Submit GOAWAY with the last stream processed.
        case submitGoAway
        /// Close the channel; the drain is over.
        case close
        /// Write what nghttp2 holds even though the channel is unwritable, then close.
        case sendFinalFramesAndClose
        /// Flush what is queued, then call `finalFramesSent()`.
        case terminate(HTTP2Error)
        /// Report the error up the pipeline and close the channel.
        case failAndClose(HTTP2Error)
        /// The channel is gone: end every stream and PING with this error.
        case tearDown(HTTP2Error)
    }
}
