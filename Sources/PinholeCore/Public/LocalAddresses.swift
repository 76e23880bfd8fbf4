import NIOCore
import NIOPosix

/// This machine's addresses that others can reach (not loopback, not link-local),
/// IPv4 first: what the relay hands out when no --public-host is given.
public enum LocalAddresses {
    public static func reachable() -> [String] {
        guard let devices = try? System.enumerateDevices() else { return [] }
        var v4: [String] = []
        var v6: [String] = []
        for device in devices {
            guard let address = device.address, let ip = address.ipAddress else { continue }
            switch address.protocol {
            case .inet where !ip.hasPrefix("127.") && !ip.hasPrefix("169.254."):
                if !v4.contains(ip) { v4.append(ip) }
            case .inet6 where ip != "::1" && !ip.lowercased().hasPrefix("fe80"):
                if !v6.contains(ip) { v6.append(ip) }
            default:
                continue
            }
        }
        return v4 + v6
    }

    public static func isWildcard(_ host: String) -> Bool {
        host == "0.0.0.0" || host == "::" || host.isEmpty
    }
}
