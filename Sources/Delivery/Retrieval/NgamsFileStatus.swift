internal import CCurl
internal import FoundationEssentials
internal import Glibc

extension HTTPArchiveStore {
    /// Asks the store what it knows about a file: `GET <base>/STATUS?file_id=<id>`, NGAS `FileStatus`.
    ///
    /// - Returns: an ``ExpectedFile`` with the store's `FileSize`, `Checksum` and the variant named by
    ///   `ChecksumPlugIn` (`ngamsGenCrc32`/`StreamCrc32`/`crc32` → ``ChecksumVariant/crc32``, `…crc32c` →
    ///   ``ChecksumVariant/crc32c``, `crc32z` → ``ChecksumVariant/crc32z``); fields the server omits are `nil`.
    /// - Throws: ``DeliveryError``: `fileNotFound` for NGAS `NGAMS_ER_UNAVAIL_FILE`, `archiveFailure` for other
    ///   failures or a document without `FileStatus`, `transferFailed` when the server cannot be reached.
    public func status(of fileId: String) async throws -> ExpectedFile {
        try FileIdentifier.validate(fileId)
        let url = retrieveURL(for: fileId).replacingAll("/RETRIEVE?", with: "/STATUS?")
        let options = self.options
        let lines = try HTTPRequestHeaders.lines(headers)
        let (status, body) = try await BlockingWork.run { (flag) throws(DeliveryError) in
            try SmallHTTPGet.perform(url, headerLines: lines, options: options, cancelled: flag)
        }
        if let message = NgamsStatus.failureMessage(in: body) {
            let code: DeliveryError.Code = message.contains("NGAMS_ER_UNAVAIL_FILE") ? .fileNotFound : .archiveFailure
            throw DeliveryError(code, "STATUS of '\(fileId)' at \(baseURL): \(message)", httpStatus: status)
        }
        let text = String(decoding: body, as: UTF8.self)
        guard status == 200, let attributes = XMLAttributes.of(element: "FileStatus", in: text) else {
            throw DeliveryError(
                .archiveFailure, "STATUS of '\(fileId)' at \(baseURL) gave no FileStatus (HTTP \(status))",
                hint: "the store may not implement NGAS STATUS", httpStatus: status)
        }
        let plugIn = attributes["ChecksumPlugIn"]?.lowercased() ?? ""
        let variant: ChecksumVariant? =
            plugIn.contains("crc32c")
            ? .crc32c : plugIn.contains("crc32z") ? .crc32z : plugIn.contains("crc32") ? .crc32 : nil
        let checksum = attributes["Checksum"].flatMap { $0.isEmpty ? nil : $0 }
        return ExpectedFile(
            fileId: fileId, size: attributes["FileSize"].flatMap { Int64($0) },
            checksum: variant == nil ? nil : checksum, checksumVariant: variant)
    }
}

extension HTTPArchiveStore {
    /// What a login check learns from the store.
    public struct ServerStatus: Sendable, Hashable {
        /// The HTTP status of the answer.
        public var httpStatus: Int
        /// The `NgamsStatus` `Status` attribute (`SUCCESS`, `FAILURE`), if the answer was an NGAS status document.
        public var status: String?
        /// Its `Message`, `State` and `HostId`, as far as given.
        public var message: String?
        public var state: String?
        public var hostId: String?
    }

    /// A real request with the store's login: `GET <base>/STATUS` (the NGAS STATUS command without parameters,
    /// which reports on the server itself) with ``headers``. For `dropbox-agent check`.
    ///
    /// - Returns: the answer, when it is HTTP 200 with an `NgamsStatus` document whose `Status` is `SUCCESS`.
    /// - Throws: ``DeliveryError``: `accessDenied` for 401/403 (the login was refused or is missing), with the
    ///   server's message; `archiveFailure` for any other answer (a FAILURE status document, another status, a
    ///   body that is no status document); `transferFailed` when the store cannot be reached; `cancelled`.
    public func serverStatus() async throws(DeliveryError) -> ServerStatus {
        let url = baseURL + "/STATUS"
        let options = self.options
        let lines = try HTTPRequestHeaders.lines(headers)
        let (code, body) = try await BlockingWork.run { (flag) throws(DeliveryError) in
            try SmallHTTPGet.perform(url, headerLines: lines, options: options, cancelled: flag)
        }
        let text = String(decoding: body, as: UTF8.self)
        let attributes = XMLAttributes.of(element: "Status", in: text)
        let answer = ServerStatus(
            httpStatus: code, status: attributes?["Status"], message: attributes?["Message"],
            state: attributes?["State"],
            hostId: attributes?["HostId"])
        let said =
            answer.message.map { ": \($0)" }
            ?? (text.isEmpty || attributes != nil
                ? "" : ": " + String(text.prefix(200)).trimmingWhitespaceAndNewlines())
        switch code {
        case 401, 403:
            let why =
                headers["Authorization"] == nil
                ? "the store asks for a login and none is configured" : "the store refused the login"
            throw DeliveryError(.accessDenied, "\(why) (HTTP \(code) to GET \(url)\(said))", httpStatus: code)
        case 200 where answer.status?.uppercased() == "SUCCESS":
            return answer
        case 200 where attributes == nil:
            throw DeliveryError(
                .archiveFailure, "GET \(url) answered HTTP 200 without an NgamsStatus document\(said)",
                hint: "is archive.url the base URL of an NGAS server?", httpStatus: code)
        default:
            throw DeliveryError(
                .archiveFailure,
                "GET \(url) answered HTTP \(code)\(answer.status.map { " with status \($0)" } ?? "")\(said)",
                httpStatus: code)
        }
    }
}

/// A GET of a small document (at most 1 MiB) into memory.
enum SmallHTTPGet {
    final class Sink {
        var bytes: [UInt8] = []
        let cancelled: CancellationFlag
        init(cancelled: CancellationFlag) { self.cancelled = cancelled }
    }

    static func perform(
        _ url: String, headerLines: [String] = [], options: HTTPStoreOptions, cancelled: CancellationFlag
    )
        throws(DeliveryError) -> (Int, [UInt8])
    {
        let handle = try CurlHandle()
        let sink = Sink(cancelled: cancelled)
        handle.set(CURLOPT_URL, url)
        if !headerLines.isEmpty { handle.set(CURLOPT_HTTPHEADER, list: headerLines) }
        handle.set(CURLOPT_FOLLOWLOCATION, 1)
        handle.set(CURLOPT_MAXREDIRS, options.maxRedirects)
        handle.set(CURLOPT_PROTOCOLS_STR, "http,https")
        handle.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        handle.set(CURLOPT_USERAGENT, options.userAgent)
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeout.milliseconds)
        handle.set(CURLOPT_TIMEOUT_MS, max(options.lowSpeedTime.milliseconds, 10_000))
        handle.setTLS(caFile: options.caFile, verifyPeer: options.verifyPeer)
        let opaque = Unmanaged.passUnretained(sink).toOpaque()
        handle.set(CURLOPT_WRITEDATA, pointer: opaque)
        handle.set(CURLOPT_XFERINFODATA, pointer: opaque)
        handle.set(CURLOPT_NOPROGRESS, 0)
        _ = ccurl_setopt_write(handle.raw) { buffer, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            guard sink.bytes.count + length <= 1 << 20 else { return 0 }
            sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
            return length
        }
        _ = ccurl_setopt_xferinfo(handle.raw) { user, _, _, _, _ in
            Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue().cancelled.isCancelled ? 1 : 0
        }
        let code = withExtendedLifetime(sink) { handle.perform() }
        if cancelled.isCancelled { throw DeliveryError(.cancelled, "request to \(url) cancelled") }
        guard code == CURLE_OK else {
            throw DeliveryError(
                .transferFailed, "request to \(url) failed: \(handle.describe(code))", curlCode: Int(code.rawValue))
        }
        return (handle.long(CURLINFO_RESPONSE_CODE), sink.bytes)
    }
}

/// Attribute lookup in simple, machine-written XML (NGAS status documents); not a general XML parser.
enum XMLAttributes {
    /// The attributes of the first `<name …>` element in `text`, entity-decoded.
    static func of(element name: String, in text: String) -> [String: String]? {
        guard let start = text.firstRange(of: "<\(name)") else { return nil }
        guard let end = text[start.upperBound...].firstIndex(of: ">") else { return nil }
        var tag = Substring(text[start.upperBound..<end])
        var result: [String: String] = [:]
        while let equals = tag.firstIndex(of: "=") {
            let key = tag[..<equals].trimmingWhitespaceAndNewlines()
            var rest = tag[tag.index(after: equals)...].drop { $0 == " " }
            guard let quote = rest.first, quote == "\"" || quote == "'" else { break }
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: quote) else { break }
            result[key] = NgamsStatus.unescape(String(rest[..<close]))
            tag = rest[rest.index(after: close)...]
        }
        return result
    }
}
