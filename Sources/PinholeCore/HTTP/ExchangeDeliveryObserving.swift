/// A downstream that wants to know when its request reached the application: its head
/// written to a connection to the target. The inspector's "queued" time ends there.
/// Optional: upstreams check for it with a cast and call it once.
public protocol ExchangeDeliveryObserving: AnyObject {
    func exchangeRequestDelivered()
}
