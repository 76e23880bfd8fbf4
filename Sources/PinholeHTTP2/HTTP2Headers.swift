internal import CNghttp2

/// An ordered HTTP/2 header list, pseudo-headers (`:method`, `:status`, ...) included.
/// Names are expected in lowercase, as HTTP/2 requires.
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

    /// The size RFC 9113 §6.5.2 counts against SETTINGS_MAX_HEADER_LIST_SIZE.
    var listSize: Int {
        fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 32 }
    }

    /// Calls `body` with this list as nghttp2 name/value pairs. The bytes live in one
    /// temporary allocation (on the stack when small); nghttp2 copies them on submit.
    func withNameValuePairs<Result>(_ body: (UnsafeMutablePointer<nghttp2_nv>, Int) -> Result) -> Result {
        let byteCount = fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        return withUnsafeTemporaryAllocation(byteCount: Swift.max(byteCount, 1), alignment: 1) { bytes in
            withUnsafeTemporaryAllocation(of: nghttp2_nv.self, capacity: Swift.max(fields.count, 1)) { pairs in
                var offset = 0
                func copy(_ text: String) -> (UnsafeMutablePointer<UInt8>, Int) {
                    let start = bytes.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self)
                    let count = text.utf8.count
                    UnsafeMutableRawBufferPointer(rebasing: bytes[offset..<(offset + count)]).copyBytes(from: text.utf8)
                    offset += count
                    return (start, count)
                }
                for (index, field) in fields.enumerated() {
                    let name = copy(field.name)
                    let value = copy(field.value)
                    pairs[index] = nghttp2_nv(
                        name: name.0, value: value.0, namelen: name.1, valuelen: value.1,
                        flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
                }
                return body(pairs.baseAddress!, fields.count)
            }
        }
    }
}
