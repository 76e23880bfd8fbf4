// swift-tools-version:6.0
import PackageDescription

// Layering (see README): two C system libraries, one thin Swift wrapper each
// (the only modules that touch C), a core of plain Swift, the relay and agent
// as libraries, and two thin executables.
let package = Package(
    name: "pinhole",
    // macOS 15: Synchronization's Mutex, the lock of the shared per-request state.
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "relay", targets: ["relay"]),
        .executable(name: "agent", targets: ["agent"]),
        .library(name: "PinholeTLS", targets: ["PinholeTLS"]),
        .library(name: "PinholeHTTP2", targets: ["PinholeHTTP2"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.11.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .systemLibrary(
            name: "CNghttp2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"])]
        ),
        .target(
            name: "PinholeTLS",
            dependencies: [
                "COpenSSL",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .target(
            name: "PinholeHTTP2",
            dependencies: [
                "CNghttp2",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Plain Swift: no C module, no TLS, no HTTP/2 (Tests/PinholeCoreTests/LayeringTests checks).
        .target(
            name: "PinholeCore",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The glue between Core's exchanges and PinholeHTTP2's streams.
        .target(
            name: "PinholeTunnel",
            dependencies: [
                "PinholeCore",
                "PinholeHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Istio plans and their YAML: nothing to do with moving bytes.
        .target(
            name: "PinholeIstio",
            dependencies: [
                "PinholeCore",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "PinholeRelay",
            dependencies: [
                "PinholeCore",
                "PinholeTunnel",
                "PinholeTLS",
                "PinholeHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The agent's request inspector: capture, a JSON API, replay and the page. Core only.
        .target(
            name: "PinholeInspector",
            dependencies: [
                "PinholeCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .target(
            name: "PinholeAgent",
            dependencies: [
                "PinholeCore",
                "PinholeTunnel",
                "PinholeTLS",
                "PinholeHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "PinholeCommands",
            dependencies: [
                "PinholeCore",
                "PinholeIstio",
                "PinholeTunnel",
                "PinholeRelay",
                "PinholeAgent",
                "PinholeInspector",
                "PinholeTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "relay",
            dependencies: ["PinholeCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "agent",
            dependencies: ["PinholeCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "pinhole-inspector-bench",
            dependencies: [
                "PinholeInspector", "PinholeCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "pinhole-tls-bench",
            dependencies: [
                "PinholeTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "pinhole-idle-tunnels",
            dependencies: [
                "PinholeAgent",
                "PinholeCore",
                "PinholeTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "pinhole-h2-server",
            dependencies: [
                "PinholeHTTP2",
                "PinholeTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "PinholeTestSupport",
            dependencies: [
                "PinholeCore",
                "PinholeHTTP2",
                "PinholeTLS",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "Tests/PinholeTestSupport"
        ),
        .testTarget(
            name: "PinholeTLSTests",
            dependencies: [
                "PinholeTLS",
                "PinholeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "PinholeHTTP2Tests",
            dependencies: [
                "PinholeHTTP2",
                "PinholeTLS",
                "PinholeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "PinholeEndToEndTests",
            dependencies: [
                "PinholeRelay",
                "PinholeAgent",
                "PinholeInspector",
                "PinholeCore",
                "PinholeTunnel",
                "PinholeTLS",
                "PinholeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PinholeAgentTests",
            dependencies: [
                "PinholeAgent",
                .product(name: "Logging", package: "swift-log"),
                "PinholeTunnel",
                "PinholeTLS",
                "PinholeHTTP2",
                "PinholeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "PinholeRelayTests",
            dependencies: [
                "PinholeRelay",
                "PinholeTunnel",
                "PinholeTLS",
                "PinholeHTTP2",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PinholeCoreTests",
            dependencies: [
                "PinholeCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                "PinholeTestSupport",
            ]
        ),
        .testTarget(
            name: "PinholeTunnelTests",
            dependencies: [
                "PinholeTunnel",
                "PinholeCore",
                "PinholeHTTP2",
                "PinholeTestSupport",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "PinholeInspectorTests",
            dependencies: [
                "PinholeInspector",
                "PinholeAgent",
                "PinholeCore",
                "PinholeTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "PinholeIstioTests",
            dependencies: [
                "PinholeIstio",
                "PinholeCore",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .testTarget(
            name: "PinholeCommandsTests",
            dependencies: [
                "PinholeCommands",
                "PinholeCore",
                "PinholeIstio",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds of our own modules skip Swift's *runtime* exclusivity checks (the
// compile-time ones stay). Every access to a class's stored property on the hot path
// otherwise goes through swift_beginAccess/endAccess; dropping them cut the relay's
// and agent's CPU per tunnelled request by about a tenth (bench notes in issue 6).
// Debug builds, which `swift test` runs, keep the checks, so the suites still trap
// on any overlapping access. With unsafeFlags SwiftPM will not take this package as a
// versioned dependency of another; the library products serve this repository's own
// executables, benchmarks and tests.
for target in package.targets where target.type == .regular || target.type == .executable {
    var settings = target.swiftSettings ?? []
    settings.append(.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)))
    target.swiftSettings = settings
}
