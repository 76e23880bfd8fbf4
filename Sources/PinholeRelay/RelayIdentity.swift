import Foundation
import PinholeTLS

/// The relay's TLS certificate: loaded from disk, or generated on first start.
public enum RelayIdentity {
    public struct Loaded: Sendable {
        public let identity: TLSIdentity
        /// True when this start generated the certificate (so its pin is new).
        public let generated: Bool
    }

    /// Loads `certificatePath`/`keyPath`; when neither exists, generates a self-signed
    /// ECDSA P-256 certificate for `dnsNames` and `ipAddresses` and writes it there
    /// (the key with mode 0600).
    public static func loadOrGenerate(
        certificatePath: String, keyPath: String, dnsNames: [String], ipAddresses: [String]
    ) throws(RelayError) -> Loaded {
        let files = FileManager.default
        let haveCertificate = files.fileExists(atPath: certificatePath)
        let haveKey = files.fileExists(atPath: keyPath)
        do {
            if haveCertificate && haveKey {
                return Loaded(
                    identity: try TLSIdentity.load(certificatePath: certificatePath, keyPath: keyPath), generated: false
                )
            }
            if haveCertificate != haveKey {
                throw RelayError.certificate(
                    "found \(haveCertificate ? certificatePath : keyPath) but not \(haveCertificate ? keyPath : certificatePath); "
                        + "give both --cert and --key, or remove the one left to generate a new pair")
            }
            let directory = (certificatePath as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try? files.createDirectory(atPath: directory, withIntermediateDirectories: true)
            }
            var request = CertificateRequest(commonName: dnsNames.first ?? ipAddresses.first ?? "pinhole-relay")
            request.dnsNames = dnsNames
            request.ipAddresses = ipAddresses
            let identity = try CertificateGenerator.selfSigned(request)
            try identity.write(certificatePath: certificatePath, keyPath: keyPath)
            return Loaded(identity: identity, generated: true)
        } catch let error as TLSError {
            throw .certificate(error.description)
        } catch let error as RelayError {
            throw error
        } catch {
            throw .certificate(String(describing: error))
        }
    }
}
