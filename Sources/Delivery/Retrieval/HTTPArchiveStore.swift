internal import FoundationEssentials
internal import Glibc
internal import Logging

/// An NGAS-compatible HTTP archive store: `GET <base>/RETRIEVE?file_id=<id>` through libcurl.
///
/// Each transfer runs on its own thread and streams into `<destination>.part` while computing the CRC.
/// Behaviour:
/// - follows 302/303 redirects (NGAS nodes) up to ``HTTPStoreOptions/maxRedirects``;
/// - sends `Accept-Encoding: identity`, so sizes and CRCs are those of the archived bytes;
/// - resumes an existing `.part` with `Range: bytes=N-` (re-hashing the prefix first); if the server answers
///   200 instead of 206, starts again from byte 0;
/// - retries transient failures (connect errors, truncation, resets, stalls below the low-speed limit, 5xx, 429)
///   with exponential backoff, honouring `Retry-After`;
/// - turns NGAS `NgamsStatus` FAILURE documents (any status, even 200 with an XML body) into errors;
/// - verifies Content-Length, the expected size and the expected checksum; a complete but wrong file is
///   discarded and fetched again from zero once, then reported — never kept;
/// - on success fsyncs and renames `.part` to the destination.
public struct HTTPArchiveStore: ArchiveStore {
    /// The store's base URL, e.g. `http://ngas.example.org:7777`.
    public let baseURL: String
    /// Transfer tuning.
    public let options: HTTPStoreOptions
    /// Extra headers sent with every request (RETRIEVE, STATUS), e.g. ``basicAuthorization(user:password:)``;
    /// libcurl does not forward them to another host after a redirect.
    public let headers: [String: String]

    /// Creates a store for `baseURL` (no trailing `/RETRIEVE`).
    public init(baseURL: String, headers: [String: String] = [:], options: HTTPStoreOptions = .init()) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.headers = headers
        self.options = options
    }

    /// `Authorization: Basic <base64(user:password)>` (RFC 7617), the login NGAS servers with authorisation
    /// enabled (and web servers in front of a store) expect.
    public static func basicAuthorization(user: String, password: String) -> [String: String] {
        ["Authorization": "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()]
    }

    /// The base URL.
    public var description: String { baseURL }

    /// The RETRIEVE URL of a file id (percent-encoded).
    public func retrieveURL(for fileId: String) -> String {
        let encoded = TextEssentials.percentEncoded(fileId) {
            TextEssentials.isASCIIAlphanumeric($0) || Array("-._~".utf8).contains($0)
        }
        return "\(baseURL)/RETRIEVE?file_id=\(encoded)"
    }

    /// Retrieves and verifies `file`; see the type's documentation for the retry rules.
    public func retrieve(
        _ file: ExpectedFile, to destination: String, progress: @escaping ProgressHandler
    )
        async throws -> RetrievedFile
    {
        try FileIdentifier.validate(file.fileId)
        var file = file
        if options.completeExpectationsFromStatus && (file.size == nil || file.checksum == nil) {
            let known = try await status(of: file.fileId)
            file.size = file.size ?? known.size
            if file.checksum == nil {
                file.checksum = known.checksum
                file.checksumVariant = known.checksumVariant
            }
        }
        return try await HTTPTransfer.run(
            file, url: retrieveURL(for: file.fileId), headers: headers, to: destination, options: options,
            storeDescription: baseURL, progress: progress)
    }
}
