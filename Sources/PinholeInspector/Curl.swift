import Foundation
import PinholeCore

/// A captured request as a `curl` command line that sends it again.
enum Curl {
    static func command(for record: CapturedRequest) -> String {
        var words = ["curl"]
        // curl would speak HTTP/1.1, which a gRPC service behind the tunnel refuses.
        if record.clientProtocol == .http2 {
            words.append(record.scheme == "https" ? "--http2" : "--http2-prior-knowledge")
        }
        // `-X HEAD` would wait for a body that never comes.
        if record.method == "HEAD" {
            words.append("--head")
        } else if record.method != "GET" || record.requestBody.totalBytes > 0 {
            words += ["-X", record.method]
        }
        words.append(quote("\(record.scheme)://\(record.authority)\(record.path)"))
        for (name, value) in record.requestHeaders where name.lowercased() != "content-length" {
            words += ["-H", quote("\(name): \(value)")]
        }
        let body = record.requestBody
        var prefix = ""
        if body.totalBytes > 0 {
            let bytes = Array(body.kept.readableBytesView)
            if let text = String(validating: bytes, as: UTF8.self), !text.contains("\0") {
                words += ["--data-binary", quote(text)]
            } else {
                prefix = "printf %s \(quote(Data(bytes).base64EncodedString())) | base64 -d | "
                words += ["--data-binary", "@-"]
            }
        }
        let line = prefix + words.joined(separator: " ")
        guard body.isTruncated else { return line }
        return "# only the first \(body.kept.readableBytes) of \(body.totalBytes) body bytes were kept\n" + line
    }

    /// POSIX-shell single quotes: everything literal, and ' as '\''.
    static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
