internal import COpenSSL

/// The client's verdict on the server certificate for one connection.
///
/// OpenSSL runs `verifyPeerCertificate` during the handshake; it finds this object
/// through the `SSL`'s application data and records *which* check failed, because
/// OpenSSL's own error ("certificate verify failed") does not say.
final class PeerVerification {
    let trust: TLSTrust
    /// The host name or IP address the client meant to reach.
    let expectedName: String
    private(set) var failure: TLSError?
    /// Set when a pinned certificate matched but its validity has ended: the pin still
    /// decides (it replaces the CA and date checks), but the user should hear of it.
    private(set) var expiredPinNotAfter: String?

    init(trust: TLSTrust, expectedName: String) {
        self.trust = trust
        self.expectedName = expectedName
    }

    /// Returns whether the chain in `store` is acceptable.
    fileprivate func verify(_ store: OpaquePointer) -> Bool {
        guard let leafPointer = X509_STORE_CTX_get0_cert(store) else {
            failure = .certificateRejected(reason: "the server sent no certificate")
            return false
        }
        let leaf = X509Certificate(borrowing: leafPointer)
        if case .pinned(let expected) = trust {
            let presented = leaf.fingerprint()
            guard presented == expected else {
                failure = .pinMismatch(expected: expected, presented: presented)
                X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION)
                return false
            }
            if leaf.hasExpired { expiredPinNotAfter = leaf.notAfter }
            return true
        }
        if X509_verify_cert(store) == 1 { return true }
        let code = X509_STORE_CTX_get_error(store)
        let culprit = X509_STORE_CTX_get_current_cert(store).map { X509Certificate(borrowing: $0) } ?? leaf
        failure = Self.describe(code: code, culprit: culprit, leaf: leaf, expectedName: expectedName)
        OpenSSLErrorQueue.clear()
        return false
    }

    private static func describe(
        code: Int32, culprit: X509Certificate, leaf: X509Certificate, expectedName: String
    ) -> TLSError {
        switch code {
        case X509_V_ERR_CERT_HAS_EXPIRED:
            return .certificateExpired(subject: culprit.subject, notAfter: culprit.notAfter)
        case X509_V_ERR_CERT_NOT_YET_VALID:
            return .certificateNotYetValid(subject: culprit.subject, notBefore: culprit.notBefore)
        case X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH:
            return .nameMismatch(expected: expectedName, presented: leaf.subjectAlternativeNames)
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN,
            X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
            X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE, X509_V_ERR_CERT_UNTRUSTED:
            return .untrustedIssuer(
                subject: leaf.subject, issuer: culprit.issuer, detail: reason(code))
        default:
            return .certificateRejected(reason: reason(code))
        }
    }

    private static func reason(_ code: Int32) -> String {
        X509_verify_cert_error_string(Int(code)).map { String(cString: $0) } ?? "verification error \(code)"
    }
}

/// OpenSSL's certificate verification hook for client contexts (see `TLSContext`).
func verifyPeerCertificate(_ store: OpaquePointer?, _ argument: UnsafeMutableRawPointer?) -> Int32 {
    guard let store,
        let ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()),
        let owner = SSL_get_ex_data(OpaquePointer(ssl), TLSConnection.applicationDataIndex)
    else { return 0 }
    let verification = Unmanaged<PeerVerification>.fromOpaque(owner).takeUnretainedValue()
    return verification.verify(store) ? 1 : 0
}
