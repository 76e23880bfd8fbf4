#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The process's limit on open files, which every connection and listener counts
/// against. Public clients that used up the descriptors would leave none for an agent
/// connecting: so the relay raises its soft limit as far as the hard one lets it, and
/// caps public connections at what is left after agents and tunnel ports.
enum FileDescriptorLimit {
    /// Descriptors for everything else: the certificate, logs, the event loops' own.
    static let reserve = 256

    struct Fitted {
        var publicConnections: Int
        var warning: String?
    }

    /// The relay: raises the soft limit to fit `publicConnections` plus `besides` (agents,
    /// tunnel ports) plus `reserve`, and returns the public cap that fits, with a warning
    /// when that is less than asked for.
    static func fit(publicConnections: Int, besides: Int) -> Fitted {
        fit(publicConnections, descriptorsEach: 1, besides: besides) { soft, fitted in
            "the open-file limit (ulimit -n) is \(soft), too low for --max-connections "
                + "\(publicConnections) beside the agents' and tunnels' share; public connections are capped at "
                + "\(fitted): raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-agent-connections"
        }
    }

    /// The embedded relay: each public connection may have a connection to the app beside
    /// it, so it takes two descriptors.
    static func fitEmbedded(publicConnections: Int) -> Fitted {
        fit(publicConnections, descriptorsEach: 2, besides: 0) { soft, fitted in
            "the open-file limit (ulimit -n) is \(soft), too low for --max-connections "
                + "\(publicConnections) (each may need a connection to your app too); public connections are capped"
                + " at \(fitted): raise the hard limit (ulimit -Hn) or lower --max-connections"
        }
    }

    /// `wanted` connections of `descriptorsEach`, beside `besides` and `reserve`: as many
    /// as the soft limit, raised if it can be, lets in, and `warning(soft, fitted)` if fewer.
    private static func fit(
        _ wanted: Int, descriptorsEach: Int, besides: Int, warning: (Int, Int) -> String
    ) -> Fitted {
        guard let soft = raiseSoftLimit(to: descriptorsEach * wanted + besides + reserve) else {
            return Fitted(publicConnections: wanted)
        }
        let available = (soft - besides - reserve) / descriptorsEach
        guard available < wanted else { return Fitted(publicConnections: wanted) }
        let fitted = max(available, 1)
        return Fitted(publicConnections: fitted, warning: warning(soft, fitted))
    }

    /// Raises the soft limit toward `needed`, as far as the hard limit allows; returns the
    /// soft limit then, or nil if it cannot be read.
    private static func raiseSoftLimit(to needed: Int) -> Int? {
        var limit = rlimit()
        guard getrlimit(resourceNumber, &limit) == 0 else { return nil }
        if limit.rlim_cur < rlim_t(needed) {
            var raised = limit
            raised.rlim_cur = min(rlim_t(needed), limit.rlim_max)
            if setrlimit(resourceNumber, &raised) == 0 { limit = raised }
        }
        return Int(clamping: limit.rlim_cur)
    }

    #if canImport(Glibc)
        private static let resourceNumber = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        private static let resourceNumber = RLIMIT_NOFILE
    #endif
}
