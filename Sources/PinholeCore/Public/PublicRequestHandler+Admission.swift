import NIOCore

// MARK: Admission among the requests in flight

extension PublicRequestHandler {
    /// Starts exchange `number` with the target the router picks, once it has a place
    /// among the requests in flight.
    func startExchange(_ head: ProxyRequestHead, number: Int, _ context: ChannelHandlerContext) {
        current = PublicExchange(number: number, head: head, startedAt: .now(), watch: watch)
        let localPort = context.channel.localAddress?.port ?? 0
        let target: any ExchangeTarget
        do {
            target = try router.target(forHost: head.authority, localPort: localPort)
        } catch {
            perform(machine.exchangeRefused(number: number, error))
            return
        }
        guard let inFlight else { return begin(head, number: number, target: target, context) }
        let tunnel = target.tunnelIdentity(for: head)
        let loop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: loop)
        let admission = inFlight.admit(
            address: clientGroup, tunnel: tunnel,
            wake: { slot in loop.execute { handler.value.admitted(number: number, slot: slot) } })
        switch admission {
        case .admitted(let slot):
            current?.slot = slot
            begin(head, number: number, target: target, context)
        case .waiting(let ticket, let limit):
            current?.ticket = ticket
            current?.target = target
            perform(machine.exchangeQueued(number: number, limit: limit, wait: inFlight.caps.waitLimit))
        case .refused(let limit):
            perform(machine.exchangeRefused(number: number, .tooManyInFlight(limit, waited: .zero)))
        }
    }

    /// A place freed up for request `number`, waiting in line.
    private func admitted(number: Int, slot: InFlightLimits.Slot) {
        guard let context, let exchange = current, exchange.number == number, exchange.slot == nil,
            let target = exchange.target
        else {
            inFlight?.release(slot)  // it stopped waiting meanwhile
            return
        }
        current?.slot = slot
        current?.ticket = nil
        current?.target = nil
        perform(machine.exchangeAdmitted(number: number))
        begin(exchange.head, number: number, target: target, context)
        parseAvailable(context)
        resumeReadingIfHeld()
    }

    /// The target may answer, or fail, within `startExchange`: the exchange is `current` before.
    private func begin(
        _ head: ProxyRequestHead, number: Int, target: any ExchangeTarget, _ context: ChannelHandlerContext
    ) {
        do {
            let upstream = try target.startExchange(head, downstream: self, on: context.eventLoop)
            if current?.number == number { current?.upstream = upstream }
            perform(machine.exchangeStarted(number: number, now: context.eventLoop.now))
        } catch {
            perform(machine.exchangeRefused(number: number, error))
        }
    }
}
