import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The reason a connection attempt failed, as a person reads it in a 502 or a
/// reconnect line: "connection refused", "no answer within 5 s", ... Never a Swift
/// type or function name: NIO's own descriptions carry both (`bind(descriptor:ptr:
/// bytes:)`, `SocketAddressError.UnknownHost`), so each known error is phrased here.
public enum ConnectionErrorText {
    public static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first?.error { return describe(first) }
            if error.dnsAAAAError != nil || error.dnsAError != nil { return unknownHost(error.host) }
            return "\(error.host) has no address to connect to"
        }
        if let error = error as? SocketAddressError.UnknownHost { return unknownHost(error.host) }
        if let error = error as? SocketAddressError {
            switch error {
            case .unsupported: return "the address family is not supported"
            case .unixDomainSocketPathTooLong: return "the socket path is too long"
            case .failedToParseIPString(let text): return "'\(text)' is not an IP address"
            default: return "the host name cannot be resolved"
            }
        }
        if let error = error as? IOError { return errnoText(error.errnoCode) }
        if case ChannelError.connectTimeout(let timeout) = error {
            return "no answer within \(timeout.nanoseconds / 1_000_000_000) s"
        }
        if let error = error as? ChannelError {
            switch error {
            case .ioOnClosedChannel, .alreadyClosed, .eof, .outputClosed, .inputClosed:
                return "the connection closed"
            default: return "the connection failed"
            }
        }
        // Our own errors describe themselves in sentences.
        return String(describing: error)
    }

    /// Whether `error` is a refused connection (nothing listens on that port).
    public static func isRefused(_ error: any Error) -> Bool { errno(of: error) == ECONNREFUSED }

    /// Whether `error` is a name that DNS does not know.
    public static func isUnknownHost(_ error: any Error) -> Bool {
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first?.error { return isUnknownHost(first) }
            return error.dnsAAAAError != nil || error.dnsAError != nil
        }
        return error is SocketAddressError.UnknownHost
    }

    /// The errno behind `error`, if it is a system call's failure.
    public static func errno(of error: any Error) -> Int32? {
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first?.error {
            return errno(of: first)
        }
        return (error as? IOError)?.errnoCode
    }

    private static func unknownHost(_ host: String) -> String {
        "cannot resolve the host name '\(host)'"
    }

    private static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        let message = String(cString: text)
        return message.prefix(1).lowercased() + message.dropFirst()
    }
}
