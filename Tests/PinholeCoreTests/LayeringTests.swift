import Foundation
import Testing

/// The layering the project chose (README "Layout", STYLE.md), checked on the sources:
/// a module that starts importing what it must not fails here, not in a review.
@Suite("Layering: which module may import which")
struct LayeringTests {
    /// What each module must never import. C stays inside its two wrappers; Core is
    /// plain Swift; TLS and HTTP/2 do not know each other; the relay does not know the
    /// agent; libraries never reach the command line.
    static let forbidden: [String: Set<String>] = [
        "PinholeCore": [
            "COpenSSL", "CNghttp2", "PinholeTLS", "PinholeHTTP2", "PinholeTunnel", "PinholeIstio", "Yams",
            "PinholeRelay", "PinholeAgent", "PinholeCommands",
        ],
        "PinholeTLS": ["CNghttp2", "PinholeHTTP2", "PinholeCore", "PinholeTunnel", "PinholeRelay", "PinholeAgent"],
        "PinholeHTTP2": ["COpenSSL", "PinholeTLS", "PinholeCore", "PinholeTunnel", "PinholeRelay", "PinholeAgent"],
        "PinholeTunnel": ["COpenSSL", "CNghttp2", "PinholeTLS", "PinholeIstio", "PinholeRelay", "PinholeAgent"],
        "PinholeIstio": ["COpenSSL", "CNghttp2", "PinholeTLS", "PinholeHTTP2", "PinholeTunnel", "PinholeRelay"],
        "PinholeRelay": ["COpenSSL", "CNghttp2", "PinholeAgent", "PinholeIstio", "PinholeCommands"],
        "PinholeAgent": ["COpenSSL", "CNghttp2", "PinholeIstio", "PinholeCommands"],
        // The inspector sees exchanges through Core's protocols only: no tunnel, no TLS, no C.
        "PinholeInspector": [
            "COpenSSL", "CNghttp2", "PinholeTLS", "PinholeHTTP2", "PinholeTunnel", "PinholeIstio", "Yams",
            "PinholeRelay", "PinholeAgent", "PinholeCommands",
        ],
        "PinholeCommands": ["COpenSSL", "CNghttp2"],
    ]

    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    /// The modules each Swift file under `Sources/MODULE` imports, by file.
    static func imports(of module: String) throws -> [(file: String, module: String)] {
        let directory = sources.appendingPathComponent(module)
        guard let walker = FileManager.default.enumerator(atPath: directory.path) else {
            throw CocoaError(.fileNoSuchFile)
        }
        var found: [(String, String)] = []
        for case let relative as String in walker where relative.hasSuffix(".swift") {
            let text = try String(contentsOf: directory.appendingPathComponent(relative), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ").map(String.init)
                // `import X`, `internal import X`, `@testable import X`, `import struct X.Y`
                guard let at = words.firstIndex(of: "import"), at + 1 < words.count else { continue }
                if at > 0,
                    !["internal", "public", "private", "fileprivate", "package", "@_exported"].contains(words[0])
                {
                    continue
                }
                let kinds: Set = ["struct", "class", "enum", "protocol", "func", "var", "let", "typealias"]
                let target = kinds.contains(words[at + 1]) && at + 2 < words.count ? words[at + 2] : words[at + 1]
                found.append((module + "/" + relative, String(target.split(separator: ".")[0])))
            }
        }
        return found
    }

    @Test("no module imports what the layering forbids", arguments: Array(forbidden.keys).sorted())
    func importsFollowTheLayers(module: String) throws {
        let imports = try Self.imports(of: module)
        #expect(!imports.isEmpty, "no sources found for \(module) under \(Self.sources.path)")
        let forbidden = Self.forbidden[module] ?? []
        let offending = imports.filter { forbidden.contains($0.module) }
        #expect(offending.isEmpty, "\(offending.map { "\($0.file) imports \($0.module)" })")
    }

    @Test("PinholeCore neither speaks of Istio resources nor lists a forbidden dependency in Package.swift")
    func coreStaysPlain() throws {
        let root = Self.sources.deletingLastPathComponent()
        let manifest = try String(contentsOf: root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let start = try #require(manifest.range(of: "name: \"PinholeCore\""))
        let end = try #require(manifest.range(of: "\n        ),", range: start.upperBound..<manifest.endIndex))
        let coreTarget = manifest[start.lowerBound..<end.lowerBound]
        for dependency in ["PinholeHTTP2", "PinholeTLS", "COpenSSL", "CNghttp2", "Yams"] {
            #expect(!coreTarget.contains(dependency), "PinholeCore depends on \(dependency) in Package.swift")
        }
        let directory = Self.sources.appendingPathComponent("PinholeCore")
        let walker = try #require(FileManager.default.enumerator(atPath: directory.path))
        for case let relative as String in walker where relative.hasSuffix(".swift") {
            let text = try String(contentsOf: directory.appendingPathComponent(relative), encoding: .utf8)
            #expect(!text.contains("VirtualService"), "PinholeCore/\(relative) mentions VirtualService")
        }
    }
}
