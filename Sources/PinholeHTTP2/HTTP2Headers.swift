internal import CNghttp2

/// An ordered HTTP/2 header list, pseudo-headers (`:method`, `:status`, ...) included.
/// Names received are lowercase; names sent are lowercased on the way out, as HTTP/2
/// requires, so a list built from HTTP/1 headers needs no lowercased copies.
public struct HTTP2Headers: Sendable, Equatable, Sequence, ExpressibleByArrayLiteral {
    public typealias Element = (name: String, value: String)

    public private(set) var fields: [Element]

    public init(_ fields: [Element] = []) {
        self.fields = fields
    }

    public init(arrayLiteral elements: Element...) {
        self.fields = elements
    }

    public mutating func add(name: String, value: String) {
        fields.append((name, value))
    }

    public mutating func reserveCapacity(_ count: Int) {
        fields.reserveCapacity(count)
    }

    /// The first value for `name`.
    public subscript(name: String) -> String? {
        fields.first { $0.name == name }?.value
    }

    public func makeIterator() -> IndexingIterator<[Element]> {
        fields.makeIterator()
    }

    public var count: Int { fields.count }

    public static func == (lhs: HTTP2Headers, rhs: HTTP2Headers) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Calls `body` with this list as nghttp2 name/value pairs. The bytes live in one
    /// temporary allocation (on the stack when small); nghttp2 copies them on submit.
    func withNameValuePairs<Result>(_ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> Result) -> Result {
        let byteCount = fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        return withUnsafeTemporaryAllocation(byteCount: Swift.max(byteCount, 1), alignment: 1) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: Swift.max(fields.count, 1)) { pairs in
                // A plain loop rather than a nested helper: a helper capturing the running
                // offset would box it on the heap, once per header block.
                let base = bytes.baseAddress!.assumingMemoryBound(to: UInt8.self)
                var offset = 0
                for index in fields.indices {
                    let (name, value) = fields[index]
                    let nameStart = offset
                    offset +=
                        UnsafeMutableBufferPointer(start: base + offset, count: name.utf8.count)
                        .initialize(from: name.utf8).1
                    for position in nameStart..<offset where base[position] &- 0x41 < 26 {
                        base[position] |= 0x20  // ASCII A-Z to a-z
                    }
                    let valueStart = offset
                    offset +=
                        UnsafeMutableBufferPointer(start: base + offset, count: value.utf8.count)
                        .initialize(from: value.utf8).1
                    pairs[index] = nghttp2_nv(
                        name: base + nameStart, value: base + valueStart, namelen: valueStart - nameStart,
                        valuelen: offset - valueStart, flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                }
                return body(pairs.baseAddress!, fields.count)
            }
        }
    }
}
