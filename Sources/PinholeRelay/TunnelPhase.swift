import Foundation

/// Where one tunnel name's connection is in its life, as the registry tracks it.
///
/// A hello that the registry accepts is `registering` until its connection is attached
/// (its dedicated port listens, the agent is about to be told); only then does it carry
/// requests. A reconnect with the same token while an older connection still serves is
/// `replacing`: the older one keeps serving until the newer one is attached, so a newer
/// connection that dies on the way (its port cannot be bound, its peer goes away) never
/// costs the working one its tunnel. Every connection is known by the generation its
/// registration got, so a stale connection's close or attach changes nothing.
///
/// Generic over the link so it can be tested without channels.
enum TunnelPhase<Link> {
    /// No connection; the name stays its token's (see `TunnelRegistry`), and since when.
    case away(since: Date)
    /// A hello was accepted; its connection is not attached yet.
    case registering(generation: UInt64)
    case connected(Link, generation: UInt64)
    /// Connected, and a newer connection with the same token is registering.
    case replacing(Link, generation: UInt64, by: UInt64)

    enum AttachAction {
        /// The connection carries the tunnel now; the one it replaced (if any) must be
        /// told and closed.
        case attached(replaced: Link?)
        /// A newer registration came since: this connection must be refused.
        case superseded
    }

    /// A hello for this name was accepted, as `generation`.
    mutating func register(generation: UInt64) {
        switch self {
        case .away, .registering:
            self = .registering(generation: generation)
        case .connected(let link, let current), .replacing(let link, let current, _):
            self = .replacing(link, generation: current, by: generation)
        }
    }

    /// The connection registered as `generation` is ready to carry requests.
    mutating func attach(generation: UInt64, link: Link) -> AttachAction {
        switch self {
        case .registering(generation):
            self = .connected(link, generation: generation)
            return .attached(replaced: nil)
        case .replacing(let old, _, generation):
            self = .connected(link, generation: generation)
            return .attached(replaced: old)
        case .away, .registering, .connected, .replacing:
            return .superseded
        }
    }

    /// The connection registered as `generation` closed.
    mutating func detach(generation: UInt64, now: Date) {
        switch self {
        case .registering(generation), .connected(_, generation):
            self = .away(since: now)
        case .replacing(_, generation, let newer):
            // The serving connection went first: the newer one may still attach.
            self = .registering(generation: newer)
        case .replacing(let link, let current, generation):
            // The newer connection died before it was attached: the older one keeps serving.
            self = .connected(link, generation: current)
        case .away, .registering, .connected, .replacing:
            break
        }
    }

    /// The connection that carries requests now.
    var link: Link? {
        switch self {
        case .connected(let link, _), .replacing(let link, _, _): return link
        case .away, .registering: return nil
        }
    }

    /// Counts against the relay's and the token's tunnel limits: connected or on its way.
    var isLive: Bool {
        if case .away = self { return false }
        return true
    }

    /// Since when the name has had no connection; nil while it has one.
    var awaySince: Date? {
        if case .away(let since) = self { return since }
        return nil
    }
}

extension TunnelPhase: Sendable where Link: Sendable {}
