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

    /// Raises the soft limit to fit `publicConnections` plus `besides` (agents, tunnel
    /// ports) plus `reserve`, and returns the public cap that fits, with a warning when
    /// that is less than asked for.
    /// `otherwise` is what else the reader can do about it.
    static func fit(
        publicConnections: Int, besides: Int, otherwise: String = "lower --max-agent-connections"
    ) -> Fitted {
        var limit = rlimit()
        guard getrlimit(resourceNumber, &limit) == 0 else { return Fitted(publicConnections: publicConnections) }
        let needed = rlim_t(publicConnections + besides + reserve)
        if limit.rlim_cur < needed {
            var raised = limit
            raised.rlim_cur = min(needed, limit.rlim_max)
            if setrlimit(resourceNumber, &raised) == 0 { limit = raised }
        }
        let available = Int(clamping: limit.rlim_cur) - besides - reserve
        guard available < publicConnections else { return Fitted(publicConnections: publicConnections) }
        let fitted = max(available, 1)
        return Fitted(
            publicConnections: fitted,
            warning: "the open-file limit (ulimit -n) is \(limit.rlim_cur), too low for --max-connections "
                + "\(publicConnections) beside the agents' and tunnels' share; public connections are capped at "
                + "\(fitted): raise the hard limit (ulimit -Hn, LimitNOFILE=) or \(otherwise)")
    }

    #if canImport(Glibc)
        private static let resourceNumber = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
    #else
        private static let resourceNumber = RLIMIT_NOFILE
    #endif
}
