import NIOCore

// MARK: Backpressure on the request body

extension PublicConnectionStateMachine {
    /// The channel wants to read. It waits while the upstream cannot take more body, or
    /// while pipelined bytes pile up behind a response; a closing connection reads on
    /// (and drops what it reads).
    mutating func readRequested(upstreamWritable: Bool, bufferedBytes: Int) -> Action {
        if mustHoldReads(upstreamWritable: upstreamWritable, bufferedBytes: bufferedBytes) {
            readHeld = true
            return .none
        }
        return .read
    }

    /// Something changed that may let a held read go: the upstream's writability, a
    /// response's end, a switch, a close, a place in line.
    mutating func readMayResume(
        upstreamWritable: Bool, bufferedBytes: Int, now: @autoclosure () -> NIODeadline = .now()
    ) -> Action {
        guard readHeld, !mustHoldReads(upstreamWritable: upstreamWritable, bufferedBytes: bufferedBytes) else {
            return .none
        }
        readHeld = false
        // The upload waited on the upstream, not on the client: its clock starts again.
        if stallTimeout != nil { uploadMovedAt = now() }
        return .read
    }

    /// The channel's writability changed: while it is not writable, the client is not
    /// taking the answer as fast as it comes.
    mutating func downstreamWritabilityChanged(writable: Bool, now: @autoclosure () -> NIODeadline) {
        guard stallTimeout != nil else { return }
        if writable {
            downloadBlockedSince = nil
        } else if downloadBlockedSince == nil {
            downloadBlockedSince = now()
        }
    }

    private func mustHoldReads(upstreamWritable: Bool, bufferedBytes: Int) -> Bool {
        switch state {
        case .awaitingResponse(let exchange), .streamingResponse(let exchange):
            return !upstreamWritable || exchange.waitingFor != nil
                || (exchange.request == .ended && bufferedBytes >= Self.maximumPipelinedBytes)
        case .switched:
            return !upstreamWritable
        case .initialized, .idle, .headArriving, .closing, .closed:
            return false
        }
    }
}
