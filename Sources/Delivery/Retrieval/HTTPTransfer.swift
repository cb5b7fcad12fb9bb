internal import Logging

/// The resumable, verified HTTP transfer of one file shared by every HTTP store: the retry policy around
/// ``HTTPTransferAttempt``.
///
/// A store only decides which URL names a file (NGAS `RETRIEVE?file_id=`, a full `https://` URL) and which
/// extra request headers to send; resume with `Range`, `Retry-After`, backoff, size and checksum verification
/// and progress are the same for all of them.
enum HTTPTransfer {
    /// Retrieves `file` from `url` into `destination`, retrying transient failures as ``HTTPArchiveStore``
    /// documents.
    ///
    /// - Parameters:
    ///   - file: what to fetch and how to verify it.
    ///   - url: the `http`/`https` URL of the file.
    ///   - headers: extra request headers (`Authorization`, …), already validated by the caller.
    ///   - destination: the path to create; `destination.part` holds a partial transfer.
    ///   - options: transfer tuning.
    ///   - storeDescription: the store as named in error messages (base URL, host).
    ///   - progress: called as bytes arrive.
    static func run(
        _ file: ExpectedFile, url: String, headers: [String: String], to destination: String,
        options: HTTPStoreOptions, storeDescription: String, progress: @escaping ProgressHandler
    ) async throws(DeliveryError) -> RetrievedFile {
        let attempt = HTTPTransferAttempt(
            file: file, url: url, headers: headers, destination: destination, options: options,
            storeDescription: storeDescription)
        var attempts = 0
        var verificationFailures = 0
        var transferred: Int64 = 0
        var serverFileName: String?
        var backoff = options.initialBackoff
        while true {
            attempts += 1
            if Task.isCancelled { throw DeliveryError(.cancelled, "retrieval of '\(file.fileId)' cancelled") }
            let (outcome, bytes, fileName) = await BlockingWork.run { flag in
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
                        "file.id": "\(file.fileId)", "attempt": .stringConvertible(attempts), "error": "\(error)",
                        "delay.ms": .stringConvertible(delay.milliseconds),
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

/// Request-header rules shared by the HTTP clients of this module.
enum HTTPRequestHeaders {
    /// `Name: value` lines for libcurl, after checking that no name or value could inject another header.
    ///
    /// - Throws: ``DeliveryError`` `invalidConfiguration` for an empty name, a name with characters outside
    ///   the HTTP token set, or a value with CR, LF or NUL.
    static func lines(_ headers: [String: String]) throws(DeliveryError) -> [String] {
        var lines: [String] = []
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            let tokenCharacters = Set("!#$%&'*+-.^_`|~".unicodeScalars)
            let nameOK =
                !name.isEmpty
                && name.unicodeScalars.allSatisfy {
                    $0.isASCII
                        && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || tokenCharacters.contains($0))
                }
            let valueOK = !value.unicodeScalars.contains { $0 == "\r" || $0 == "\n" || $0 == "\0" }
            guard nameOK, valueOK else {
                throw DeliveryError(
                    .invalidConfiguration, "invalid HTTP request header '\(name)'",
                    hint: "header names are HTTP tokens; values must not contain line breaks")
            }
            lines.append("\(name): \(value)")
        }
        return lines
    }

    /// The hint given with a 401/403 answer.
    static let accessDeniedHint =
        "the data may be proprietary or the token expired: configure a valid token file "
        + "(`sources.almaArchive.tokenFile`), whose token is sent as `Authorization: Bearer <token>`"
}
