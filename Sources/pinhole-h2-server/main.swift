// A minimal HTTP/2 server on PinholeHTTP2 (and PinholeTLS with --tls) that answers
// every request with "Hello, world!", for h2load comparisons with nghttpd:
//   pinhole-h2-server [--port P] [--tls] [--threads N]
// Prints "listening PORT" once ready.
import Foundation
import NIOCore
import NIOPosix
import PinholeHTTP2
import PinholeTLS

var port = 0
var useTLS = false
var threads = 1
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--port": port = arguments.next().flatMap(Int.init) ?? port
    case "--tls": useTLS = true
    case "--threads": threads = arguments.next().flatMap(Int.init) ?? threads
    default:
        FileHandle.standardError.write(Data("usage: pinhole-h2-server [--port P] [--tls] [--threads N]\n".utf8))
        exit(2)
    }
}

let tls: TLSContext? =
    try useTLS
    ? TLSContext(
        server: TLSServerConfiguration(
            identity: CertificateGenerator.selfSigned(
                CertificateRequest(commonName: "localhost", ipAddresses: ["127.0.0.1"])),
            applicationProtocols: ["h2"]))
    : nil
let body = ByteBuffer(string: "Hello, world!")
let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let server = try await ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 256)
    .childChannelOption(ChannelOptions.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            if let tls { try channel.pipeline.syncOperations.addHandler(TLSHandler(context: tls)) }
            try channel.pipeline.syncOperations.addHandler(
                HTTP2ConnectionHandler(role: .server, eventLoop: channel.eventLoop) { _ in StaticResponder(body: body) }
            )
        }
    }
    .bind(host: "127.0.0.1", port: port).get()
FileHandle.standardOutput.write(Data("listening \(server.localAddress?.port ?? 0)\n".utf8))
try await server.closeFuture.get()
