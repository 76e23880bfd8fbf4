// Opens many idle tunnels to a relay, for measuring the relay's memory per tunnel:
//   pinhole-idle-tunnels --relay HOST:PORT --token TOKEN --pin sha256:HEX [--count N]
// Prints "ready N" once every tunnel is registered, then holds them until stdin closes.
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PinholeAgent
import PinholeCore
import PinholeTLS

func usage() -> Never {
    FileHandle.standardError.write(
        Data("usage: pinhole-idle-tunnels --relay HOST:PORT --token TOKEN --pin sha256:HEX [--count N]\n".utf8))
    exit(2)
}

var relay: String?
var token: String?
var pin: String?
var count = 500
// Connecting a few at a time measures what an idle tunnel costs, not the transient
// memory of hundreds of simultaneous TLS handshakes.
var concurrency = 20
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--relay": relay = arguments.next()
    case "--token": token = arguments.next()
    case "--pin": pin = arguments.next()
    case "--count": count = arguments.next().flatMap(Int.init) ?? count
    case "--concurrency": concurrency = arguments.next().flatMap(Int.init) ?? concurrency
    default: usage()
    }
}
guard let relay, let token, let pin, let colon = relay.lastIndex(of: ":"),
    let port = Int(relay[relay.index(after: colon)...]),
    let fingerprint = try? CertificateFingerprint(parsing: pin)
else { usage() }
let host = String(relay[..<colon])
let total = count
let wave = max(1, concurrency)

let ready = NIOLockedValueBox(0)
let failed = NIOLockedValueBox<String?>(nil)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let logger = Logger(label: "idle", factory: { _ in SwiftLogNoOpLogHandler() })
var tasks: [Task<Void, any Error>] = []
for waveStart in stride(from: 0, to: total, by: wave) {
    let waveEnd = min(waveStart + wave, total)
    let waveReady = AsyncStream<Void>.makeStream()
    for index in waveStart..<waveEnd {
        var configuration = AgentConfiguration(
            target: .default,
            mode: .relay(
                .init(host: host, port: port, token: token, trust: .pinned(fingerprint), name: "idle-\(index)")))
        configuration.keepaliveInterval = .seconds(60)
        let agent = Agent(configuration: configuration, group: group, logger: logger) { event in
            if case .tunnelReady = event {
                let now = ready.withLockedValue { value -> Int in
                    value += 1
                    return value
                }
                if now == waveEnd { waveReady.continuation.yield() }
            }
        }
        tasks.append(
            Task {
                do {
                    try await agent.run()
                } catch {
                    failed.withLockedValue { $0 = "\(error)" }
                    waveReady.continuation.yield()
                }
            })
    }
    for await _ in waveReady.stream { break }
    if failed.withLockedValue({ $0 }) != nil { break }
}
if let failure = failed.withLockedValue({ $0 }) {
    FileHandle.standardError.write(Data("pinhole-idle-tunnels: \(failure)\n".utf8))
    exit(1)
}
FileHandle.standardOutput.write(Data("ready \(count)\n".utf8))
// Hold the tunnels until whoever started us closes our stdin.
while !FileHandle.standardInput.availableData.isEmpty {}
for task in tasks { task.cancel() }
