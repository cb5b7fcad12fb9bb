internal import Foundation

/// The headers of the current HTTP response, reset at every status line (redirects produce several).
struct HTTPResponseHeaders {
    var status = 0
    var fields: [String: String] = [:]
    /// Counts status lines: which response of the transfer (redirects included) the fields belong to.
    var responseIndex = 0

    mutating func consume(line raw: String) {
        let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if line.hasPrefix("HTTP/") {
            fields = [:]
            responseIndex += 1
            let parts = line.split(separator: " ", maxSplits: 2)
            status = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            return
        }
        guard let colon = line.firstIndex(of: ":") else { return }
        let name = line[..<colon].lowercased()
        let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        fields[name] = value
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
            let item = part.trimmingCharacters(in: .whitespaces)
            guard item.lowercased().hasPrefix("filename=") else { continue }
            var name = item.dropFirst("filename=".count)
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = name.dropFirst().dropLast() }
            return name.isEmpty ? nil : String(name)
        }
        return nil
    }

    /// `Retry-After` as a delay: delta-seconds or an HTTP date.
    func retryAfter(now: Date = Date()) -> Duration? {
        guard let value = fields["retry-after"] else { return nil }
        if let seconds = Int(value) { return .seconds(max(0, seconds)) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(max(0, Int(date.timeIntervalSince(now) * 1000)))
    }
}

/// Reads NGAS `NgamsStatus` XML error documents.
enum NgamsStatus {
    /// The `Message` of a `<Status … Status="FAILURE" Message="…">` element, or `nil` if `body` is not an NGAS failure.
    static func failureMessage(in body: [UInt8]) -> String? {
        let text = String(decoding: body.prefix(65536), as: UTF8.self)
        guard text.contains("NgamsStatus"), text.contains("Status=\"FAILURE\"") else { return nil }
        guard let start = text.range(of: "Message=\"") else { return "NGAS reported FAILURE" }
        let rest = text[start.upperBound...]
        let message = rest.prefix { $0 != "\"" }
        return unescape(String(message))
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
    }
}
