import NIOCore
import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

/// The reason a connection attempt failed, as a person reads it in a 502 or a
/// reconnect line: "connection refused", "no answer within 5 s", ...
public enum ConnectionErrorText {
    public static func describe(_ error: any Error) -> String {
        if let error = error as? NIOConnectionError {
            if let first = error.connectionErrors.first?.error { return describe(first) }
            if let dns = error.dnsAAAAError ?? error.dnsAError { return "cannot resolve the host (\(dns))" }
            return "no address to connect to"
        }
        if let error = error as? IOError { return errnoText(error.errnoCode) }
        if case ChannelError.connectTimeout(let timeout) = error {
            return "no answer within \(timeout.nanoseconds / 1_000_000_000) s"
        }
        return String(describing: error)
    }

    private static func errnoText(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "error \(code)" }
        let message = String(cString: text)
        return message.prefix(1).lowercased() + message.dropFirst()
    }
}
