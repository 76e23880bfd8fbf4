/// Field names that most header blocks carry, made into strings once. A received name
/// found here is that string, not a new one: no UTF-8 check, and for the longer ones
/// (more than 15 bytes, past Swift's inline strings) no allocation and no freeing later.
/// Profiles of relay and agent under h2load had building name strings at 1.5–2% of
/// each process, the X-Forwarded-* and tunnel fields among them on every request.
///
/// Names arrive lowercase (nghttp2 refuses others), so they are compared byte for byte.
enum HeaderNameTable {
    private static let names: [String] = [
        ":method", ":path", ":scheme", ":authority", ":status", ":protocol",
        "accept", "accept-encoding", "accept-language", "authorization", "cache-control",
        "content-encoding", "content-length", "content-type", "cookie", "date", "etag", "host",
        "last-modified", "location", "server", "set-cookie", "te", "trailer", "user-agent", "vary",
        "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-request-id", "traceparent",
        "tracestate", "baggage", "x-envoy-expected-rq-timeout-ms", "x-envoy-attempt-count",
        "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
        "grpc-status", "grpc-message", "grpc-timeout", "grpc-encoding", "grpc-accept-encoding",
        "grpc-status-details-bin",
        // Pinhole's own: the tunnel's fields (see PinholeTunnel) and the agent's mark.
        "pinhole-client-protocol", "pinhole-upgrade", "pinhole-upgraded", "x-pinhole-tunnel",
    ]

    /// `names` by length, each with its bytes: a lookup compares a handful at most.
    private static let byLength: [[(bytes: [UInt8], name: String)]] = {
        var table = [[(bytes: [UInt8], name: String)]](repeating: [], count: 32)
        for name in names { table[name.utf8.count].append((Array(name.utf8), name)) }
        return table
    }()

    /// The table's string for `bytes`, if it has one.
    static func name(_ bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count < byLength.count else { return nil }
        for candidate in byLength[bytes.count] where candidate.bytes.withUnsafeBytes({ $0.elementsEqual(bytes) }) {
            return candidate.name
        }
        return nil
    }

    /// A received field name as a string: the table's, or a new one.
    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        name(bytes) ?? String(decoding: bytes, as: UTF8.self)
    }
}
