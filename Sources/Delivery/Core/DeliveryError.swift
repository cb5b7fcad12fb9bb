internal import FoundationEssentials
internal import Glibc

/// The one error type of the `Delivery` module.
///
/// Modelled on swift-subprocess's `SubprocessError`: a stable ``Code`` (its `rawValue` goes into status
/// files), a human ``message``, an optional ``hint`` telling an operator what to do, and the transport
/// context (libcurl result code, HTTP status) when there is one.
public struct DeliveryError: Error, Sendable, CustomStringConvertible {
    /// A stable, lowerCamelCase identifier of the kind of failure.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        /// The stable string, e.g. `checksumMismatch`.
        public var rawValue: String
        /// Creates a code from its stable string.
        public init(rawValue: String) { self.rawValue = rawValue }
        /// The stable string.
        public var description: String { rawValue }

        /// A file id that is empty, contains `/`, `..`, control characters or is too long.
        public static let invalidFileId = Code(rawValue: "invalidFileId")
        /// The archive store does not have the file (HTTP 404, NGAS `NGAMS_ER_UNAVAIL_FILE`, missing local file).
        public static let fileNotFound = Code(rawValue: "fileNotFound")
        /// The archive store answered with an error (NGAS `NgamsStatus` FAILURE, HTTP 4xx/5xx).
        public static let archiveFailure = Code(rawValue: "archiveFailure")
        /// The transfer failed at the transport level (connection refused/reset, timeout, partial file) after all retries.
        public static let transferFailed = Code(rawValue: "transferFailed")
        /// The bytes received do not have the expected size (or disagree with Content-Length).
        public static let sizeMismatch = Code(rawValue: "sizeMismatch")
        /// The bytes received do not have the expected checksum.
        public static let checksumMismatch = Code(rawValue: "checksumMismatch")
        /// An expected checksum string or variant that cannot be interpreted.
        public static let invalidChecksum = Code(rawValue: "invalidChecksum")
        /// A local file-system operation failed (open, write, rename, fsync, link, …).
        public static let fileSystem = Code(rawValue: "fileSystemError")
        /// The operation was cancelled.
        public static let cancelled = Code(rawValue: "cancelled")
        /// An archive (tar, tgz) is unreadable or corrupt.
        public static let archiveCorrupt = Code(rawValue: "archiveCorrupt")
        /// An archive entry would escape the target directory or is of a forbidden type.
        public static let unsafeArchiveEntry = Code(rawValue: "unsafeArchiveEntry")
        /// An archive exceeds an ``ArchiveLimits`` bound (tar bomb).
        public static let archiveLimitExceeded = Code(rawValue: "archiveLimitExceeded")
        /// Publishing to the download area failed or the name is invalid/already taken.
        public static let publishFailed = Code(rawValue: "publishFailed")
        /// An e-mail address is malformed or contains injection characters.
        public static let invalidMailAddress = Code(rawValue: "invalidMailAddress")
        /// The SMTP server refused our credentials.
        public static let smtpAuthenticationFailed = Code(rawValue: "smtpAuthenticationFailed")
        /// The SMTP server rejected a recipient or the message permanently (5xx).
        public static let smtpRejected = Code(rawValue: "smtpRejected")
        /// SMTP failed temporarily (4xx, connection problems) after all retries.
        public static let smtpTransient = Code(rawValue: "smtpTransient")
        /// SMTP TLS negotiation or certificate verification failed.
        public static let smtpTLS = Code(rawValue: "smtpTLSFailed")
        /// The server refused access (HTTP 401 or 403): a missing, wrong or expired token, or proprietary data.
        public static let accessDenied = Code(rawValue: "accessDenied")
        /// A document fetched over HTTP is larger than the caller allows.
        public static let responseTooLarge = Code(rawValue: "responseTooLarge")
        /// A server's directory index could not be read.
        public static let listingUnreadable = Code(rawValue: "listingUnreadable")
        /// The configuration given to a Delivery type is invalid.
        public static let invalidConfiguration = Code(rawValue: "invalidConfiguration")
    }

    /// What kind of failure this is.
    public var code: Code
    /// A human explanation naming the file, host or entry concerned.
    public var message: String
    /// What an operator can do about it, when there is something useful to say.
    public var hint: String?
    /// The libcurl result code (`CURLcode`) of the failed transfer, if any.
    public var curlCode: Int?
    /// The HTTP status of the last response, if any.
    public var httpStatus: Int?
    /// The SMTP reply code, if known.
    public var smtpReply: Int?

    /// Creates an error.
    public init(
        _ code: Code, _ message: String, hint: String? = nil,
        curlCode: Int? = nil, httpStatus: Int? = nil, smtpReply: Int? = nil
    ) {
        self.code = code
        self.message = message
        self.hint = hint
        self.curlCode = curlCode
        self.httpStatus = httpStatus
        self.smtpReply = smtpReply
    }

    /// `code: message [context] (hint: …)`.
    public var description: String {
        var text = "\(code.rawValue): \(message)"
        var context: [String] = []
        if let httpStatus { context.append("HTTP \(httpStatus)") }
        if let curlCode { context.append("curl \(curlCode)") }
        if let smtpReply { context.append("SMTP \(smtpReply)") }
        if !context.isEmpty { text += " [" + context.joined(separator: ", ") + "]" }
        if let hint { text += " (hint: \(hint))" }
        return text
    }
}

extension DeliveryError {
    /// A file-system error built from `errno`.
    static func posix(_ what: String, path: String, errno code: Int32) -> DeliveryError {
        DeliveryError(.fileSystem, "\(what) '\(path)': \(String(cString: strerror(code)))")
    }
}
