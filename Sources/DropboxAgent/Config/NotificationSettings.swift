import Foundation

/// `notifications`: email on success and failure.
struct NotificationSettings: Codable, Sendable {
    /// SMTP server; without it, messages are written as `.eml` files to the outbox.
    var smtp: SMTPSettings?
    /// Where `.eml` files go when there is no SMTP server (default `<data>/outbox`).
    var outboxDirectory: String?
    /// Sender address.
    var from: String?
    /// Operators told about every outcome, in addition to the request's recipients.
    var operators: [String] = []
    /// Which outcomes are mailed: any of `succeeded`, `failed`, `cancelled`.
    var notifyOn: [String] = ["succeeded", "failed"]
    /// A mail not sent (SMTP down, 4xx) is retried after this many seconds, then twice as long each time (at
    /// most an hour apart) …
    var retryInitialSeconds: Double = 30
    /// … until this many seconds after it was queued; then the recipient is `failed`.
    var retryHorizonSeconds: Double = 86400

    enum CodingKeys: String, CodingKey, CaseIterable {
        case smtp, outboxDirectory, from, operators, notifyOn, retryInitialSeconds, retryHorizonSeconds
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = NotificationSettings()
        smtp = try c.decodeIfPresent(SMTPSettings.self, forKey: .smtp)
        outboxDirectory = try c.decodeIfPresent(String.self, forKey: .outboxDirectory)
        from = try c.decodeIfPresent(String.self, forKey: .from)
        operators = try c.value(.operators, default: d.operators)
        notifyOn = try c.value(.notifyOn, default: d.notifyOn)
        retryInitialSeconds = try c.value(.retryInitialSeconds, default: d.retryInitialSeconds)
        retryHorizonSeconds = try c.value(.retryHorizonSeconds, default: d.retryHorizonSeconds)
    }
}

/// `notifications.smtp`.
struct SMTPSettings: Codable, Sendable {
    /// `smtp://host:587` (with `security: startTLS`) or `smtps://host:465` (implicit TLS).
    var url: String
    /// `startTLS` (default), `implicitTLS` or `none` (only for a local relay).
    var security: String?
    var username: String?
    /// A file holding the password (preferred over `password`, which sits in the config in clear).
    var passwordFile: String?
    var password: String?
    /// CA bundle to verify the server with (default: the system's).
    var caFile: String?
    /// Verify the server's certificate (default true).
    var verifyPeer: Bool?
    var timeoutSeconds: Double?
    var maxAttempts: Int?
}
