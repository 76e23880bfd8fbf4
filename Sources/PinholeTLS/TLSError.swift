/// Everything that can go wrong in PinholeTLS, phrased for the person who has to fix it.
///
/// Certificate failures name the check that failed; OpenSSL's error queue is
/// turned into readable text rather than numeric codes.
public enum TLSError: Error, Sendable, Equatable {
    /// The peer's certificate is past its `notAfter` date.
    case certificateExpired(subject: String, notAfter: String)
    /// The peer's certificate is not valid yet (its `notBefore` is in the future).
    case certificateNotYetValid(subject: String, notBefore: String)
    /// No trusted authority vouches for the peer's certificate.
    case untrustedIssuer(subject: String, issuer: String, detail: String)
    /// The certificate is valid but was issued for other names.
    case nameMismatch(expected: String, presented: [String])
    /// The certificate is not the pinned one.
    case pinMismatch(expected: CertificateFingerprint, presented: CertificateFingerprint)
    /// The peer's certificate failed another verification check.
    case certificateRejected(reason: String)
    /// Both sides offered ALPN protocols, but none in common (or the server chose none).
    case applicationProtocolMismatch(offered: [String], selected: String?)
    /// The TLS handshake failed; `reason` is OpenSSL's explanation.
    case handshakeFailed(reason: String)
    /// The peer sent bytes that are not valid TLS, or broke the protocol after the handshake.
    case protocolViolation(reason: String)
    /// The connection ended without a TLS `close_notify`, so the data may be incomplete.
    case truncated
    /// Configuration that cannot work, such as a malformed fingerprint or ALPN name.
    case invalidConfiguration(String)
    /// A certificate or key file could not be read, parsed or written.
    case fileProblem(path: String, reason: String)
    /// An OpenSSL call failed outside a handshake.
    case openSSL(operation: String, reason: String)
}

extension TLSError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .certificateExpired(let subject, let notAfter):
            return "the server's certificate (\(subject)) expired on \(notAfter); renew it on the server"
        case .certificateNotYetValid(let subject, let notBefore):
            return "the server's certificate (\(subject)) is not valid before \(notBefore); check both clocks"
        case .untrustedIssuer(let subject, let issuer, let detail):
            return "the server's certificate (\(subject), issued by \(issuer)) is not trusted: \(detail); "
                + "pass the issuing CA bundle, or pin the certificate's sha256 fingerprint"
        case .nameMismatch(let expected, let presented):
            let names = presented.isEmpty ? "no DNS or IP names" : presented.joined(separator: ", ")
            return "the server's certificate is for \(names), not for \(expected); "
                + "connect by one of those names or reissue the certificate with \(expected) in it"
        case .pinMismatch(let expected, let presented):
            return "the server's certificate is \(presented), but the pin is \(expected); "
                + "either the certificate was regenerated (pin the new one) or this is not your server"
        case .certificateRejected(let reason):
            return "the server's certificate was rejected: \(reason)"
        case .applicationProtocolMismatch(let offered, let selected):
            let offer = offered.joined(separator: ", ")
            if let selected {
                return "the peer chose application protocol '\(selected)', which was not offered (\(offer))"
            }
            return "the peer speaks none of the offered application protocols (\(offer)); "
                + "it is probably not a compatible version"
        case .handshakeFailed(let reason):
            return "TLS handshake failed: \(reason)"
        case .protocolViolation(let reason):
            return "the peer broke the TLS protocol: \(reason)"
        case .truncated:
            return "the connection was cut without a TLS close_notify; data may be incomplete"
        case .invalidConfiguration(let reason):
            return "invalid TLS configuration: \(reason)"
        case .fileProblem(let path, let reason):
            return "\(path): \(reason)"
        case .openSSL(let operation, let reason):
            return "\(operation) failed: \(reason)"
        }
    }
}
