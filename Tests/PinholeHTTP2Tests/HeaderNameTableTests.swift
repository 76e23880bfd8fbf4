import Testing

@testable import PinholeHTTP2

@Suite("Received field names")
struct HeaderNameTableTests {
    static func received(_ name: String) -> String {
        Array(name.utf8).withUnsafeBytes { HeaderNameTable.string($0) }
    }

    @Test("a common name is the table's own string; any other name is read as it came")
    func lookup() {
        for name in HeaderNameTable.names {
            #expect(Array(name.utf8).withUnsafeBytes { HeaderNameTable.name($0) } == name)
        }
        // Same length as table names, different bytes: never taken for one of them.
        for name in ["x-forwarded-prot0", "x-custom", "grpc-statux", "", "t", "tf", String(repeating: "a", count: 40)]
            + HeaderNameTable.names.map({ $0 + "x" }) + HeaderNameTable.names.map({ String($0.dropLast()) + "~" })
        {
            #expect(Array(name.utf8).withUnsafeBytes { HeaderNameTable.name($0) } == nil, "\(name)")
            #expect(Self.received(name) == name)
        }
    }

    @Test("a received header block keeps every name, common or not, with its value")
    func throughConnection() throws {
        let receiver = RecordingDelegate()
        let pair = try InMemoryHTTP2Pair { _ in receiver }
        let sent: HTTP2Headers = [
            (":method", "GET"), (":scheme", "http"), (":authority", "app"), (":path", "/"),
            ("x-forwarded-proto", "https"), ("x-odd-one", "1"), ("pinhole-client-protocol", "HTTP/2"),
        ]
        _ = try pair.clientConnection.openStream(headers: sent, endStream: true, delegate: RecordingDelegate())
        try pair.interact()
        #expect(receiver.headers == sent)
    }
}
