internal import CCurl
internal import FoundationEssentials
internal import Glibc

/// The status and headers of an HTTP response, as libcurl parsed them (``CurlHandle/header(_:)``,
/// `CURLINFO_RESPONSE_CODE`): our own code only interprets the few values the transfers need.
struct HTTPResponseHeaders {
    var status = 0
    /// Header names lowercased.
    var fields: [String: String] = [:]

    init(status: Int = 0, fields: [String: String] = [:]) {
        self.status = status
        self.fields = fields
    }

    /// The latest response of `handle` (during the transfer: the one being received).
    init(of handle: CurlHandle) {
        self.init(status: handle.long(CURLINFO_RESPONSE_CODE), fields: handle.headers())
    }

    var contentLength: Int64? { fields["content-length"].flatMap { Int64($0) } }
    var contentType: String? { fields["content-type"] }
    var isXML: Bool { contentType?.lowercased().contains("xml") ?? false }

    /// The first byte offset of a `Content-Range: bytes s-e/size` header.
    var contentRangeStart: Int64? {
        guard let value = fields["content-range"], value.lowercased().hasPrefix("bytes ") else { return nil }
        let spec = value.dropFirst(6)
        return spec.split(separator: "-").first.flatMap { Int64($0) }
    }

    /// The total size of a `Content-Range: bytes s-e/size` header.
    var contentRangeTotal: Int64? {
        guard let value = fields["content-range"], let slash = value.lastIndex(of: "/") else { return nil }
        return Int64(value[value.index(after: slash)...])
    }

    /// The file name of `Content-Disposition: attachment; filename="name"` (or `filename=name`).
    var dispositionFileName: String? {
        guard let value = fields["content-disposition"] else { return nil }
        for part in value.split(separator: ";") {
            let item = part.trimmingWhitespace()
            guard item.lowercased().hasPrefix("filename=") else { continue }
            var name = item.dropFirst("filename=".count)
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = name.dropFirst().dropLast() }
            return name.isEmpty ? nil : String(name)
        }
        return nil
    }
}

/// Reads NGAS `NgamsStatus` XML error documents.
enum NgamsStatus {
    /// The `Message` of a `<Status … Status="FAILURE" Message="…">` element, or `nil` if `body` is not an NGAS failure.
    static func failureMessage(in body: [UInt8]) -> String? {
        let text = String(decoding: body.prefix(65536), as: UTF8.self)
        guard text.contains("NgamsStatus"), text.contains("Status=\"FAILURE\"") else { return nil }
        guard let start = text.firstRange(of: "Message=\"") else { return "NGAS reported FAILURE" }
        let rest = text[start.upperBound...]
        let message = rest.prefix { $0 != "\"" }
        return unescape(String(message))
    }

    static func unescape(_ s: String) -> String {
        s.replacingAll("&quot;", with: "\"").replacingAll("&apos;", with: "'")
            .replacingAll("&lt;", with: "<").replacingAll("&gt;", with: ">")
            .replacingAll("&amp;", with: "&")
    }
}
