import Foundation
import Testing

/// The Istio CRD schemas and their validator (`validate.py`, shared beside the repository:
/// `../shared/istio-schema`, or `PINHOLE_ISTIO_SCHEMA`). It checks documents the way the API
/// server does under `kubectl apply --validate=strict`, CEL rules included, plus a part of
/// istiod's webhook.
enum IstioSchema {
    /// The folder holding `validate.py`, or nil when it is not on this machine.
    static let directory: String? = {
        let environment = ProcessInfo.processInfo.environment["PINHOLE_ISTIO_SCHEMA"]
        // Tests/PinholeIstioTests/IstioSchema.swift -> the repository's root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let candidates =
            [environment].compactMap { $0 } + [
                root.appendingPathComponent("../shared/istio-schema").standardized.path,
                root.appendingPathComponent("../../shared/istio-schema").standardized.path,
            ]
        return candidates.first { FileManager.default.fileExists(atPath: $0 + "/validate.py") }
    }()

    static var isAvailable: Bool { directory != nil }

    /// The schema sets checked: the newest, and the last released Istio.
    static let schemaSets = ["newest", "istio-1.30.3"]

    /// Runs the validator on the VirtualServices and ServiceEntries of `yaml` (it knows no
    /// other kinds) against `schemaSet`; returns its output, or throws with it if invalid.
    static func validate(_ yaml: String, schemaSet: String) throws -> String {
        let directory = try #require(directory)
        let kept = yaml.components(separatedBy: "\n---\n").filter {
            $0.contains("kind: VirtualService") || $0.contains("kind: ServiceEntry")
        }
        let file = FileManager.default.temporaryDirectory
            .appendingPathComponent("pinhole-istio-\(UUID().uuidString).yaml")
        try kept.joined(separator: "\n---\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["python3", directory + "/validate.py"]
        if schemaSet != "newest" { arguments += ["--schema-dir", directory + "/" + schemaSet] }
        process.arguments = arguments + [file.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Invalid(description: text)
        }
        return text
    }

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }
}
