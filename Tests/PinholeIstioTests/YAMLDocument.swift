import Yams

/// Read-only navigation through YAML loaded with Yams, with values typed the way the YAML
/// resolver reads them (so a port that came out as the string "8443" is not an Int).
struct YAMLDocument {
    let raw: Any?

    init(_ raw: Any?) {
        self.raw = raw
    }

    /// Every document of a `---` separated stream.
    static func loadAll(_ yaml: String) throws -> [YAMLDocument] {
        var sequence = try Yams.load_all(yaml: yaml)
        var documents: [YAMLDocument] = []
        while let document = sequence.next() {
            documents.append(YAMLDocument(document))
        }
        if let error = sequence.error {
            throw error
        }
        return documents
    }

    subscript(key: String) -> YAMLDocument {
        YAMLDocument((raw as? [AnyHashable: Any])?[AnyHashable(key)])
    }

    subscript(index: Int) -> YAMLDocument {
        guard let array = raw as? [Any], array.indices.contains(index) else {
            return YAMLDocument(nil)
        }
        return YAMLDocument(array[index])
    }

    var exists: Bool { raw != nil }
    var string: String? { raw as? String }
    var int: Int? { raw as? Int }
    /// Integers count as numbers too, as they do for the API server's `type: number`.
    var number: Double? { (raw as? Double) ?? (raw as? Int).map(Double.init) }
    var count: Int? { (raw as? [Any])?.count ?? (raw as? [AnyHashable: Any])?.count }
    var keys: Set<String> {
        Set(((raw as? [AnyHashable: Any])?.keys).map { $0.compactMap { $0.base as? String } } ?? [])
    }
    var strings: [String]? { (raw as? [Any])?.compactMap { $0 as? String } }
}
