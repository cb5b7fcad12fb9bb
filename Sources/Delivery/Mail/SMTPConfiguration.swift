/// How ``SMTPMailer`` reaches its server. Decodable from JSON with defaults for everything but `url` and `from`.
public struct SMTPConfiguration: Sendable, Codable, Hashable {
    /// Transport security.
    public enum Security: String, Sendable, Codable, Hashable {
        /// Plain connection upgraded with STARTTLS, which is required (`CURLUSESSL_ALL`); `smtp://` URLs.
        case startTLS
        /// TLS from the first byte; `smtps://` URLs (port 465).
        case implicitTLS
        /// No TLS at all (only for loopback relays).
        case none
    }

    /// `smtp://host:port` or `smtps://host:port`.
    public var url: String
    /// Transport security; default ``Security/startTLS``.
    public var security: Security
    /// SMTP AUTH user name; no AUTH if `nil`.
    public var username: String?
    /// SMTP AUTH password (prefer ``passwordFile``).
    public var password: String?
    /// A file whose first line is the password (read at each send).
    public var passwordFile: String?
    /// The envelope sender (`MAIL FROM`), e.g. `dropbox-agent@example.org`.
    public var from: String
    /// A PEM CA bundle to verify the server with; system CAs if `nil`.
    public var caFile: String?
    /// Verify the server certificate and host name; default `true`.
    public var verifyPeer: Bool
    /// Limit for one SMTP transaction, seconds; default 60.
    public var timeoutSeconds: Int
    /// Attempts per recipient for transient failures (4xx, connection errors); default 3.
    public var maxAttempts: Int
    /// First delay between attempts, seconds (doubled each time); default 2.
    public var retryInitialBackoffSeconds: Double
    /// Longest delay between attempts, seconds; default 60.
    public var retryMaxBackoffSeconds: Double

    /// Creates a configuration.
    public init(
        url: String, security: Security = .startTLS, username: String? = nil, password: String? = nil,
        passwordFile: String? = nil, from: String, caFile: String? = nil, verifyPeer: Bool = true,
        timeoutSeconds: Int = 60, maxAttempts: Int = 3, retryInitialBackoffSeconds: Double = 2,
        retryMaxBackoffSeconds: Double = 60
    ) {
        self.url = url
        self.security = security
        self.username = username
        self.password = password
        self.passwordFile = passwordFile
        self.from = from
        self.caFile = caFile
        self.verifyPeer = verifyPeer
        self.timeoutSeconds = timeoutSeconds
        self.maxAttempts = maxAttempts
        self.retryInitialBackoffSeconds = retryInitialBackoffSeconds
        self.retryMaxBackoffSeconds = retryMaxBackoffSeconds
    }

    /// Decodes, applying the defaults for missing keys.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            url: try c.decode(String.self, forKey: .url),
            security: try c.decodeIfPresent(Security.self, forKey: .security) ?? .startTLS,
            username: try c.decodeIfPresent(String.self, forKey: .username),
            password: try c.decodeIfPresent(String.self, forKey: .password),
            passwordFile: try c.decodeIfPresent(String.self, forKey: .passwordFile),
            from: try c.decode(String.self, forKey: .from),
            caFile: try c.decodeIfPresent(String.self, forKey: .caFile),
            verifyPeer: try c.decodeIfPresent(Bool.self, forKey: .verifyPeer) ?? true,
            timeoutSeconds: try c.decodeIfPresent(Int.self, forKey: .timeoutSeconds) ?? 60,
            maxAttempts: try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? 3,
            retryInitialBackoffSeconds: try c.decodeIfPresent(Double.self, forKey: .retryInitialBackoffSeconds) ?? 2,
            retryMaxBackoffSeconds: try c.decodeIfPresent(Double.self, forKey: .retryMaxBackoffSeconds) ?? 60)
    }

    /// Checks the URL scheme against ``security`` and the sender address.
    /// - Throws: ``DeliveryError`` with code `invalidConfiguration`.
    public func validate() throws(DeliveryError) {
        let lower = url.lowercased()
        switch security {
        case .implicitTLS where !lower.hasPrefix("smtps://"):
            throw DeliveryError(.invalidConfiguration, "implicit TLS needs an smtps:// URL, got '\(url)'")
        case .startTLS, .none:
            if !lower.hasPrefix("smtp://") {
                throw DeliveryError(.invalidConfiguration, "\(security.rawValue) needs an smtp:// URL, got '\(url)'")
            }
        default:
            break
        }
        do throws(DeliveryError) {
            _ = try MailAddress(from)
        } catch {
            throw DeliveryError(.invalidConfiguration, "SMTP sender: \(error.message)")
        }
        if password != nil && passwordFile != nil {
            throw DeliveryError(.invalidConfiguration, "give either password or passwordFile, not both")
        }
    }
}
