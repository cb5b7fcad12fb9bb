internal import FoundationEssentials
internal import Glibc

/// An archive store whose files are named by full `http`/`https` URLs, e.g. the ALMA archive's
/// `…/dataPortal/<file name>` links from DataLink.
///
/// Transfers are exactly those of ``HTTPArchiveStore`` (the same code): `Range` resume of an existing `.part`,
/// retries with backoff honouring `Retry-After`, verification of Content-Length and of the expected size and
/// checksum, progress. Only the URL differs: it is looked up by ``ExpectedFile/fileId`` in ``urls``.
/// Extra ``headers`` (such as `Authorization: Bearer …`) go with every request; libcurl does not forward them
/// when a redirect leads to another host. Works behind a ``FileCache`` like any store (the cache keys by
/// ``ExpectedFile``).
public struct URLFileStore: ArchiveStore {
    /// The URL of each file id.
    public let urls: [String: String]
    /// Extra request headers sent with every request.
    public let headers: [String: String]
    /// Transfer tuning.
    public let options: HTTPStoreOptions

    /// Creates a store for the files in `urls` (file id → URL).
    ///
    /// Nothing is checked here; ``retrieve(_:to:progress:)`` refuses an unknown id, a URL that is not
    /// `http`/`https`, and headers that could inject other headers.
    public init(urls: [String: String], headers: [String: String] = [:], options: HTTPStoreOptions = .init()) {
        self.urls = urls
        self.headers = headers
        self.options = options
    }

    /// The hosts the URLs point to, e.g. `URL store https://almascience.org (3 files)`.
    public var description: String {
        let hosts = Set(urls.values.map(Self.origin(of:))).sorted()
        return "URL store \(hosts.joined(separator: ", ")) (\(urls.count) files)"
    }

    /// `scheme://host[:port]` of a URL (the whole string if it does not parse).
    static func origin(of url: String) -> String {
        guard let parsed = URL(string: url), let scheme = parsed.scheme, let host = parsed.host else { return url }
        return parsed.port.map { "\(scheme)://\(host):\($0)" } ?? "\(scheme)://\(host)"
    }

    /// Retrieves and verifies `file` from its URL; see the type's documentation.
    ///
    /// - Throws: ``DeliveryError``: `invalidFileId`, `invalidConfiguration` (no URL for the id, not `http(s)`,
    ///   a bad header), `accessDenied` (401/403), `fileNotFound` (404), and the transfer codes of
    ///   ``HTTPArchiveStore``.
    public func retrieve(
        _ file: ExpectedFile, to destination: String, progress: @escaping ProgressHandler
    )
        async throws -> RetrievedFile
    {
        try FileIdentifier.validate(file.fileId)
        guard let url = urls[file.fileId] else {
            throw DeliveryError(.invalidConfiguration, "\(description) has no URL for '\(file.fileId)'")
        }
        guard let scheme = URL(string: url)?.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw DeliveryError(.invalidConfiguration, "the URL of '\(file.fileId)' is not http(s): '\(url)'")
        }
        _ = try HTTPRequestHeaders.lines(headers)
        return try await HTTPTransfer.run(
            file, url: url, headers: headers, to: destination, options: options, storeDescription: Self.origin(of: url),
            progress: progress)
    }
}
