internal import Foundation
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

    /// Creates a store for `baseURL` (no trailing `/RETRIEVE`).
    public init(baseURL: String, options: HTTPStoreOptions = .init()) {
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.options = options
    }

    /// The base URL.
    public var description: String { baseURL }

    /// The RETRIEVE URL of a file id (percent-encoded).
    public func retrieveURL(for fileId: String) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(
            CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        let encoded = fileId.addingPercentEncoding(withAllowedCharacters: allowed) ?? fileId
        return "\(baseURL)/RETRIEVE?file_id=\(encoded)"
    }

    /// Retrieves and verifies `file`; see the type's documentation for the retry rules.
    public func retrieve(_ file: ExpectedFile, to destination: String, progress: @escaping ProgressHandler)
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
        let attempt = HTTPTransferAttempt(
            file: file, url: retrieveURL(for: file.fileId), destination: destination, options: options,
            storeDescription: baseURL)
        var attempts = 0
        var verificationFailures = 0
        var transferred: Int64 = 0
        var serverFileName: String?
        var backoff = options.initialBackoff
        while true {
            attempts += 1
            if Task.isCancelled { throw DeliveryError(.cancelled, "retrieval of '\(file.fileId)' cancelled") }
            let (outcome, bytes, fileName) = try await BlockingWork.run { flag in
                attempt.perform(cancelled: flag, progress: progress)
            }
            transferred += bytes
            serverFileName = fileName ?? serverFileName
            var delay = backoff
            switch outcome {
            case .done(var retrieved):
                retrieved.bytesTransferred = transferred
                retrieved.serverFileName = retrieved.serverFileName ?? serverFileName
                return retrieved
            case .fatal(let error):
                throw error
            case .verificationFailed(var error):
                verificationFailures += 1
                options.logger?.warning(
                    "retrieved file failed verification", metadata: ["file.id": "\(file.fileId)", "error": "\(error)"])
                if verificationFailures > 1 || attempts >= options.maxAttempts {
                    error.message += "; fetched \(verificationFailures) times from zero, the bad copy was discarded"
                    throw error
                }
                delay = .zero
            case .retry(var error, let retryAfter, _):
                if attempts >= options.maxAttempts {
                    error.message += " (gave up after \(attempts) attempts)"
                    throw error
                }
                if let retryAfter { delay = min(retryAfter, options.maxRetryAfter) }
                options.logger?.info(
                    "retrying transfer",
                    metadata: [
                        "file.id": "\(file.fileId)", "attempt": "\(attempts)", "error": "\(error)",
                        "delay.ms": "\(delay.milliseconds)",
                    ])
                backoff = min(backoff * 2, options.maxBackoff)
            }
            if delay > .zero {
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    throw DeliveryError(.cancelled, "retrieval of '\(file.fileId)' cancelled")
                }
            }
        }
    }
}
