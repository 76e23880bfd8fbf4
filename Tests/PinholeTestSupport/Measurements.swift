import Foundation

/// Resident set size (VmRSS) of a process, in bytes, from /proc (Linux); 0 if unknown.
public func residentMemoryBytes(ofProcess pid: Int32) -> Int {
    memoryBytes(ofProcess: pid, field: "VmRSS:")
}

/// Peak resident set size (VmHWM) of a process, in bytes; 0 if unknown.
public func peakResidentMemoryBytes(ofProcess pid: Int32) -> Int {
    memoryBytes(ofProcess: pid, field: "VmHWM:")
}

private func memoryBytes(ofProcess pid: Int32, field: String) -> Int {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix(field) {
        return (line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0) * 1024
    }
    return 0
}

/// Where `swift build` put the package's executables: next to the running test binary.
public var builtExecutablesDirectory: String {
    let executable =
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().path
}

/// A fresh directory under the system's temporary directory.
public func makeTemporaryDirectory(_ label: String) throws -> String {
    let path = NSTemporaryDirectory() + "pinhole-\(label)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// The Python with the tests' PyPI peers (grpcio, websockets, httpx): the virtual
/// environment `scripts/test` makes, named by PINHOLE_TEST_PYTHON or found at
/// `.build/test-venv`. Throws, saying how to get it, when there is none.
public func testPython() throws -> String {
    if let named = ProcessInfo.processInfo.environment["PINHOLE_TEST_PYTHON"], !named.isEmpty { return named }
    // The test binary runs from .build/<triple>/debug/; the venv is .build/test-venv.
    var directory = URL(fileURLWithPath: builtExecutablesDirectory)
    while directory.path != "/" {
        let candidate = directory.appendingPathComponent("test-venv/bin/python3").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        directory.deleteLastPathComponent()
    }
    throw ChildProcess.Failure(
        description: "no Python with the test peers (grpcio, websockets, httpx): run scripts/test once to make it")
}
