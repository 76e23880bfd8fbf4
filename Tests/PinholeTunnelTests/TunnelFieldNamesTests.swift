import PinholeCore
import PinholeTunnel
import Testing

@testable import PinholeHTTP2

/// PinholeHTTP2 sits below the modules that name the tunnel's own fields, so its table
/// of common received names spells them out; this keeps the two from drifting apart
/// (a name missing from the table is still read, only as a new string each time).
@Suite("The tunnel's field names and the received-name table")
struct TunnelFieldNamesTests {
    @Test("every field the tunnel adds to requests and responses is a common name of the table")
    func tunnelFieldsAreInTheTable() {
        let tunnelFields = [
            TunnelFields.clientProtocol, TunnelUpgrade.requestField, TunnelUpgrade.responseField,
            ForwardingFields.forName, ForwardingFields.protoName, ForwardingFields.hostName,
        ]
        for name in tunnelFields {
            #expect(HeaderNameTable.names.contains(name), "\(name)")
        }
    }
}
