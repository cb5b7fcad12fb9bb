public import Logging

/// Tuning of HTTP transfers: ``HTTPArchiveStore``, ``URLFileStore`` and ``HTTPDocument``.
public struct HTTPStoreOptions: Sendable {
    /// Attempts per file for transient failures (connection errors, truncation, stalls, 5xx, 429).
    public var maxAttempts: Int = 5
    /// First delay between attempts; doubled after each failure up to ``maxBackoff``.
    public var initialBackoff: Duration = .milliseconds(500)
    /// Longest delay between attempts (exponential backoff).
    public var maxBackoff: Duration = .seconds(30)
    /// Longest `Retry-After` honoured; longer requests are capped to this.
    public var maxRetryAfter: Duration = .seconds(300)
    /// Connection timeout (`CURLOPT_CONNECTTIMEOUT_MS`).
    public var connectTimeout: Duration = .seconds(30)
    /// A transfer slower than this many bytes/s for ``lowSpeedTime`` is aborted and retried (`CURLOPT_LOW_SPEED_LIMIT`).
    public var lowSpeedLimitBytes: Int = 1024
    /// See ``lowSpeedLimitBytes`` (`CURLOPT_LOW_SPEED_TIME`).
    public var lowSpeedTime: Duration = .seconds(30)
    /// Longest time a small document (``HTTPDocument``: a VOTable, a directory index) may take in total
    /// (`CURLOPT_TIMEOUT_MS`); file transfers have no total limit, only the low-speed one.
    public var documentTimeout: Duration = .seconds(300)
    /// Redirects (NGAS 303 to another node) followed at most (`CURLOPT_MAXREDIRS`).
    public var maxRedirects: Int = 5
    /// The `User-Agent` header.
    public var userAgent: String = "dropbox-agent-delivery/1.0"
    /// A PEM bundle of CA certificates for `https` stores (`CURLOPT_CAINFO`); system CAs if `nil`.
    public var caFile: String? = nil
    /// Verify the server certificate of `https` stores.
    public var verifyPeer: Bool = true
    /// libcurl's receive buffer size (`CURLOPT_BUFFERSIZE`).
    public var receiveBufferBytes: Int = 512 * 1024
    /// When an ``ExpectedFile`` lacks a size or checksum, ask the store's NGAS `STATUS?file_id=` first and verify
    /// against its `FileSize`/`Checksum` (see ``HTTPArchiveStore/status(of:)``). A store without STATUS then fails.
    public var completeExpectationsFromStatus: Bool = false
    /// Where retries, ignored ranges and failures are logged; nothing is logged if `nil`.
    public var logger: Logger? = nil

    /// The defaults: 5 attempts, 0.5 s → 30 s backoff, 30 s connect timeout, abort below 1 KiB/s for 30 s.
    public init() {}
}
