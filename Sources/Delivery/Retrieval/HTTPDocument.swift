internal import CCurl
public import FoundationEssentials
internal import Glibc

/// One small HTTP document (a VOTable, a directory index) fetched into memory.
///
/// Fetched with libcurl on a dedicated thread: redirects followed (up to ``HTTPStoreOptions/maxRedirects``,
/// `http`/`https` only), connect, low-speed and total timeouts from ``HTTPStoreOptions``, `Accept-Encoding:
/// identity` (no transparent decompression: ``body`` is exactly what the server sent).
public struct HTTPDocument: Sendable, Hashable {
    /// The URL that was asked for.
    public var url: String
    /// The URL of the final response, after redirects.
    public var finalURL: String
    /// The HTTP status of the final response.
    public var status: Int
    /// The final response's header fields, names in lower case (a repeated field keeps its last value).
    public var headers: [String: String]
    /// The response body.
    public var body: Data

    /// Creates a document (for tests and for callers that have the bytes already).
    public init(url: String, finalURL: String? = nil, status: Int, headers: [String: String] = [:], body: Data) {
        self.url = url
        self.finalURL = finalURL ?? url
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The `Content-Type` header, if any.
    public var contentType: String? { headers["content-type"] }

    /// Fetches `url` and returns it only if the final status is 2xx.
    ///
    /// - Parameters:
    ///   - url: an `http` or `https` URL.
    ///   - headers: extra request headers, e.g. `["Authorization": "Bearer …"]`; libcurl does not send them on to
    ///     another host after a redirect.
    ///   - maxBytes: the largest body accepted.
    ///   - options: timeouts, redirects and TLS settings.
    /// - Returns: the document.
    /// - Throws: ``DeliveryError``: `accessDenied` for 401/403 (with a hint about the archive token),
    ///   `fileNotFound` for 404/410, `archiveFailure` for other statuses (the message names the status, the host
    ///   and the start of a text body), `transferFailed` when the host cannot be reached or the transfer breaks,
    ///   `responseTooLarge`, `invalidConfiguration` for a bad URL or header, `cancelled`.
    public static func get(
        url: String, headers: [String: String] = [:], maxBytes: Int = 16 << 20, options: HTTPStoreOptions = .init()
    ) async throws(DeliveryError) -> HTTPDocument {
        let document = try await fetch(url: url, headers: headers, maxBytes: maxBytes, options: options)
        try document.requireSuccess()
        return document
    }

    /// Fetches `url` and returns the final response whatever its status (TAP services answer errors as VOTables
    /// with 400 or 500); see ``get(url:headers:maxBytes:options:)`` for the rest.
    ///
    /// - Throws: ``DeliveryError`` for transport failures only (never for an HTTP status).
    public static func fetch(
        url: String, headers: [String: String] = [:], maxBytes: Int = 16 << 20, options: HTTPStoreOptions = .init()
    ) async throws(DeliveryError) -> HTTPDocument {
        guard let scheme = URL(string: url)?.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw DeliveryError(.invalidConfiguration, "not an http(s) URL: '\(url)'")
        }
        let lines = try HTTPRequestHeaders.lines(headers)
        return try await BlockingWork.run { (flag) throws(DeliveryError) in
            try perform(url: url, headerLines: lines, maxBytes: maxBytes, options: options, cancelled: flag)
        }
    }

    /// Throws unless ``status`` is 2xx; see ``get(url:headers:maxBytes:options:)`` for the codes.
    public func requireSuccess() throws(DeliveryError) {
        guard !(200..<300).contains(status) else { return }
        let host = URL(string: finalURL)?.host ?? finalURL
        var message = "\(host) answered HTTP \(status) to \(url)"
        if let excerpt = bodyExcerpt { message += ": \(excerpt)" }
        switch status {
        case 401, 403:
            throw DeliveryError(.accessDenied, message, hint: HTTPRequestHeaders.accessDeniedHint, httpStatus: status)
        case 404, 410:
            throw DeliveryError(.fileNotFound, message, httpStatus: status)
        default:
            throw DeliveryError(
                .archiveFailure, message,
                hint: (500..<600).contains(status) || status == 429 ? "the service may be busy; try again later" : nil,
                httpStatus: status)
        }
    }

    /// The first 300 characters of a textual body, whitespace collapsed (for error messages).
    var bodyExcerpt: String? {
        guard !body.isEmpty else { return nil }
        let type = contentType?.lowercased() ?? ""
        guard type.isEmpty || type.hasPrefix("text/") || type.contains("xml") || type.contains("json") else {
            return nil
        }
        let text = String(decoding: body.prefix(4096), as: UTF8.self)
            .split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        guard !text.isEmpty else { return nil }
        return text.count > 300 ? String(text.prefix(300)) + "…" : text
    }

    /// Collects the body up to a limit; used only on the transfer thread.
    private final class Sink {
        var bytes: [UInt8] = []
        var tooLarge = false
        let maxBytes: Int
        let cancelled: CancellationFlag
        init(maxBytes: Int, cancelled: CancellationFlag) {
            self.maxBytes = maxBytes
            self.cancelled = cancelled
        }
    }

    /// The blocking libcurl part. The corresponding C function is `curl_easy_perform`.
    private static func perform(
        url: String, headerLines: [String], maxBytes: Int, options: HTTPStoreOptions, cancelled: CancellationFlag
    ) throws(DeliveryError) -> HTTPDocument {
        let handle = try CurlHandle()
        let sink = Sink(maxBytes: maxBytes, cancelled: cancelled)
        handle.set(CURLOPT_URL, url)
        handle.set(CURLOPT_FOLLOWLOCATION, 1)
        handle.set(CURLOPT_MAXREDIRS, options.maxRedirects)
        handle.set(CURLOPT_PROTOCOLS_STR, "http,https")
        handle.set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
        handle.set(CURLOPT_HTTPHEADER, list: ["Accept-Encoding: identity"] + headerLines)
        handle.set(CURLOPT_USERAGENT, options.userAgent)
        handle.set(CURLOPT_CONNECTTIMEOUT_MS, options.connectTimeout.milliseconds)
        handle.set(CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedLimitBytes)
        handle.set(CURLOPT_LOW_SPEED_TIME, max(1, options.lowSpeedTime.milliseconds / 1000))
        handle.set(CURLOPT_TIMEOUT_MS, max(1, options.documentTimeout.milliseconds))
        handle.setTLS(caFile: options.caFile, verifyPeer: options.verifyPeer)
        let opaque = Unmanaged.passUnretained(sink).toOpaque()
        handle.set(CURLOPT_HEADERDATA, pointer: opaque)
        handle.set(CURLOPT_WRITEDATA, pointer: opaque)
        handle.set(CURLOPT_XFERINFODATA, pointer: opaque)
        handle.set(CURLOPT_NOPROGRESS, 0)
        _ = ccurl_setopt_header(handle.raw) { buffer, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            // A new response (after a redirect) starts a new body.
            if let buffer, CurlHandle.isStatusLine(buffer, length) { sink.bytes.removeAll(keepingCapacity: true) }
            return length
        }
        _ = ccurl_setopt_write(handle.raw) { buffer, size, count, user in
            let sink = Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue()
            let length = size * count
            guard sink.bytes.count + length <= sink.maxBytes else {
                sink.tooLarge = true
                return 0
            }
            sink.bytes.append(contentsOf: UnsafeRawBufferPointer(start: buffer, count: length))
            return length
        }
        _ = ccurl_setopt_xferinfo(handle.raw) { user, _, _, _, _ in
            Unmanaged<Sink>.fromOpaque(user!).takeUnretainedValue().cancelled.isCancelled ? 1 : 0
        }
        let code = withExtendedLifetime(sink) { handle.perform() }
        let host = URL(string: url)?.host ?? url
        if cancelled.isCancelled { throw DeliveryError(.cancelled, "request to \(url) cancelled") }
        if sink.tooLarge {
            let status = handle.long(CURLINFO_RESPONSE_CODE)
            throw DeliveryError(
                .responseTooLarge, "\(host) sent more than \(maxBytes) bytes for \(url)",
                httpStatus: status == 0 ? nil : status)
        }
        guard code == CURLE_OK else {
            let status = handle.long(CURLINFO_RESPONSE_CODE)
            throw DeliveryError(
                .transferFailed, "request to \(host) failed (\(url)): \(handle.describe(code))",
                hint: "check that the service is reachable; try again later", curlCode: Int(code.rawValue),
                httpStatus: status == 0 ? nil : status)
        }
        return HTTPDocument(
            url: url, finalURL: handle.string(CURLINFO_EFFECTIVE_URL) ?? url,
            status: handle.long(CURLINFO_RESPONSE_CODE), headers: handle.headers(), body: Data(sink.bytes))
    }
}
