import NIOCore
import NIOHTTP1

/// A request head as a public client sent it, with its framing read and its
/// hop-by-hop fields (and Host and Expect) taken out of `headers`.
struct PublicRequestHead: Equatable {
    var method: HTTPMethod
    /// The request target as sent: usually a path, sometimes an absolute URL.
    var target: String
    var version: HTTPVersion
    var host: String?
    var headers: HTTPHeaders
    /// Whether a body follows (Content-Length above zero, or chunked).
    var hasBody: Bool
    /// Whether the connection may carry another request after this one.
    var keepAlive: Bool
    var expectsContinue: Bool
    /// The protocols an HTTP/1.1 client asked to switch to (Upgrade), which the tunnel
    /// does not carry; nil without the field, and for HTTP/1.0, which must ignore it.
    var upgrade: String? = nil
}

/// Reads public clients' HTTP/1.x requests, one after another on a connection, in
/// place of NIO's HTTPRequestDecoder: the relay's hottest parsing, done in one pass
/// over each head with no pipeline hop per part.
///
/// The input is untrusted, so framing is strict where requests are smuggled: both
/// Content-Length and Transfer-Encoding, differing Content-Lengths, a transfer coding
/// other than a final chunked, folded lines, control characters and two Hosts are
/// all refused (RFC 9112 §6.3, §3.2, §5).
struct HTTP1RequestParser {
    enum Event: Equatable {
        case head(PublicRequestHead)
        case body(ByteBuffer)
        case end(trailers: HTTPHeaders?)
    }

    private enum State {
        case head
        case body(HTTP1BodyReader)
    }

    private var state = State.head
    private var scanner = HTTP1SectionScanner()

    /// True between requests: the next byte read starts a new one.
    var isBetweenRequests: Bool {
        if case .head = state { return true }
        return false
    }

    /// The next event in `input`, consuming its bytes, or nil when more are needed.
    mutating func next(from input: inout ByteBuffer) throws(HTTP1SyntaxError) -> Event? {
        switch state {
        case .head:
            // RFC 9112 §2.2: empty lines before a request line are ignored.
            while let first = input.readableBytesView.first, first == UInt8(ascii: "\r") || first == UInt8(ascii: "\n")
            {
                input.moveReaderIndex(forwardBy: 1)
            }
            guard let section = try scanner.take(from: &input) else { return nil }
            let (head, framing) = try Self.readHead(section)
            state = .body(HTTP1BodyReader(framing))
            return .head(head)
        case .body(var reader):
            let step = try reader.next(from: &input)
            state = reader.isDone ? .head : .body(reader)
            switch step {
            case .none: return nil
            case .body(let piece): return .body(piece)
            case .end(let trailers): return .end(trailers: trailers)
            }
        }
    }

    private static func readHead(
        _ section: [UInt8]
    ) throws(HTTP1SyntaxError) -> (PublicRequestHead, HTTP1BodyReader.Framing) {
        var lines = HTTP1Lines(section)
        guard let requestLine = lines.next() else {
            throw HTTP1SyntaxError(description: "an empty request line")
        }
        let (method, target, minorVersion) = try Self.requestLine(section[requestLine])
        // Fields are gathered in an array: HTTPHeaders.add would check each name for
        // non-ASCII bytes again, and HTTP1Syntax.field has already vetted it as a token.
        var fields: [(String, String)] = []
        // Room for every line, and for the three X-Forwarded-* fields added later.
        fields.reserveCapacity(HTTP1Syntax.lineCount(section) + 3)
        var hopByHop = HopByHopFields()
        var host: String?
        var length: Int?
        var expectsContinue = false
        while let line = lines.next() {
            let (name, value) = try HTTP1Syntax.field(section[line])
            if hopByHop.take(name: name, value: value) { continue }
            switch name.count {
            case 4 where HopByHop.equalsIgnoringCase(name, "host"):
                guard host == nil else { throw HTTP1SyntaxError(description: "two Host fields") }
                host = HTTP1Syntax.text(value)
                continue
            case 6 where HopByHop.equalsIgnoringCase(name, "expect"):
                // We stream the body on at once, so the relay answers 100-continue itself.
                expectsContinue = expectsContinue || HopByHop.equalsIgnoringCase(value, "100-continue")
                continue
            case 15 where HopByHop.equalsIgnoringCase(name, TunnelUpgrade.requestField):
                continue  // only the relay may say this, from the Upgrade field
            case 14 where HopByHop.equalsIgnoringCase(name, "content-length"):
                let repeated = length != nil
                length = try HTTP1Syntax.contentLength(value, previous: length)
                // The same length twice is accepted (RFC 9110 §8.6) but passed on once:
                // HTTP/2 refuses a repeated content-length.
                if repeated { continue }
            default:
                break
            }
            fields.append((HTTP1Syntax.text(name), HTTP1Syntax.text(value)))
        }
        hopByHop.removeConnectionOptions(from: &fields)
        let headers = HTTPHeaders(fields)

        let framing: HTTP1BodyReader.Framing
        if hopByHop.hasTransferEncoding {
            guard length == nil else {
                throw HTTP1SyntaxError(description: "both Content-Length and Transfer-Encoding, which is ambiguous")
            }
            // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; its framing is faulty.
            guard minorVersion == 1 else {
                throw HTTP1SyntaxError(description: "Transfer-Encoding in an HTTP/1.0 request")
            }
            guard hopByHop.isChunked else {
                throw HTTP1SyntaxError(description: "a Transfer-Encoding that does not end with chunked")
            }
            if let other = hopByHop.otherTransferCoding {
                throw HTTP1SyntaxError(description: "a transfer coding the tunnel cannot carry ('\(other)')")
            }
            framing = .chunked
        } else {
            framing = .length(length ?? 0)
        }
        let head = PublicRequestHead(
            method: method, target: target, version: HTTPVersion(major: 1, minor: minorVersion), host: host,
            headers: headers, hasBody: framing != .length(0), keepAlive: hopByHop.persists(minorVersion: minorVersion),
            expectsContinue: expectsContinue, upgrade: minorVersion == 1 ? hopByHop.upgrade : nil)
        return (head, framing)
    }

    /// `METHOD target HTTP/1.x`.
    private static func requestLine(
        _ line: ArraySlice<UInt8>
    ) throws(HTTP1SyntaxError) -> (HTTPMethod, String, minor: Int) {
        guard let firstSpace = line.firstIndex(of: UInt8(ascii: " ")),
            let secondSpace = line[(firstSpace + 1)...].firstIndex(of: UInt8(ascii: " ")),
            !line[(secondSpace + 1)...].contains(UInt8(ascii: " ")), firstSpace > line.startIndex,
            line[..<firstSpace].allSatisfy(HTTP1Syntax.isTokenCharacter)
        else {
            throw HTTP1SyntaxError(description: "a request line that is not 'METHOD target HTTP/1.1'")
        }
        let method = line[..<firstSpace]
        let target = line[(firstSpace + 1)..<secondSpace]
        let version = line[(secondSpace + 1)...]
        guard version.count == 8, version.starts(with: "HTTP/1.".utf8), let minor = version.last,
            minor &- UInt8(ascii: "0") < 10
        else {
            throw HTTP1SyntaxError(
                description: "a request that is not HTTP/1.x ('\(HTTP1Syntax.text(version.prefix(16)))')")
        }
        guard !target.isEmpty, target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw HTTP1SyntaxError(
                description: "a request target with spaces, control characters or non-ASCII bytes (percent-encode them)"
            )
        }
        // HTTP/1.2 and later minors are read as 1.1 (RFC 9110 §2.5).
        return (
            HTTPMethod(rawValue: HTTP1Syntax.text(method)), HTTP1Syntax.text(target),
            minor == UInt8(ascii: "0") ? 0 : 1
        )
    }
}
