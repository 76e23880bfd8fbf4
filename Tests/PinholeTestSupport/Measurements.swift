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
