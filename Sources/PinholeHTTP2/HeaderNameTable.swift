#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Field names that most header blocks carry, made into strings once. A received name
/// found here is that string, not a new one: no UTF-8 check, and for the longer ones
/// (more than 15 bytes, past Swift's inline strings) no allocation and no freeing later.
/// Profiles of relay and agent under h2load had building name strings at 1.5–2% of
/// each process, the X-Forwarded-* and tunnel fields among them on every request.
///
/// Names arrive lowercase (nghttp2 refuses others), so they are compared byte for byte.
enum HeaderNameTable {
    static let names: [String] = [
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

    /// `names` sorted by length, and all their bytes in that order in one array: the names
    /// of one length are side by side, so a lookup compares a handful of runs of one
    /// array, with no array or string per candidate to retain and release.
    private struct Layout {
        var sorted: [String] = []
        var bytes: [UInt8] = []
        /// Per length n: the index in `sorted` of the first name n bytes long or longer,
        /// and where its bytes start.
        var firstOfLength: [(index: Int, byte: Int)] = []

        init(_ names: [String]) {
            sorted = names.sorted { $0.utf8.count < $1.utf8.count }
            let longest = sorted.last?.utf8.count ?? 0
            var index = 0
            for length in 0...longest + 1 {
                while index < sorted.count, sorted[index].utf8.count < length {
                    bytes += sorted[index].utf8
                    index += 1
                }
                firstOfLength.append((index, bytes.count))
            }
        }
    }

    private static let layout = Layout(names)

    /// The table's string for `bytes`, if it has one. Compared with `memcmp`: the generic
    /// `elementsEqual` went byte by byte, and with an array and a string retained per
    /// candidate, this lookup was 1% of the embedded relay.
    static func name(_ bytes: UnsafeRawBufferPointer) -> String? {
        let count = bytes.count
        guard count + 1 < layout.firstOfLength.count, let wanted = bytes.baseAddress else { return nil }
        let (first, firstByte) = layout.firstOfLength[count]
        let end = layout.firstOfLength[count + 1].index
        guard first < end else { return nil }
        let found: Int? = layout.bytes.withUnsafeBytes { all in
            var offset = firstByte
            for index in first..<end {
                if memcmp(all.baseAddress! + offset, wanted, count) == 0 { return index }
                offset += count
            }
            return nil
        }
        return found.map { layout.sorted[$0] }
    }

    /// A received field name as a string: the table's, or a new one.
    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        name(bytes) ?? String(decoding: bytes, as: UTF8.self)
    }
}
