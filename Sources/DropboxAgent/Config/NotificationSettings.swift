import Delivery
import FoundationEssentials
import Glibc

/// `notifications`: email on success and failure.
struct NotificationSettings: Codable, Sendable {
    /// SMTP server; without it, messages are written as `.eml` files to the outbox. The mailer's own model, read
    /// from the configuration's keys (``SMTPConfiguration/init(settings:)``); its sender is `from`.
    var smtp: SMTPConfiguration?
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
        if c.contains(.smtp), try !c.decodeNil(forKey: .smtp) {
            smtp = try SMTPConfiguration(settings: c.superDecoder(forKey: .smtp))
        }
        outboxDirectory = try c.decodeIfPresent(String.self, forKey: .outboxDirectory)
        from = try c.decodeIfPresent(String.self, forKey: .from)
        operators = try c.value(.operators, default: d.operators)
        notifyOn = try c.value(.notifyOn, default: d.notifyOn)
        retryInitialSeconds = try c.value(.retryInitialSeconds, default: d.retryInitialSeconds)
        retryHorizonSeconds = try c.value(.retryHorizonSeconds, default: d.retryHorizonSeconds)
    }
}

extension SMTPConfiguration {
    /// `notifications.smtp`: `url`, `security` (`startTLS`, the default, `implicitTLS` or `none`), `username`,
    /// `password` or `passwordFile`, `caFile`, `verifyPeer`, `timeoutSeconds`, `maxAttempts`. The sender is set from
    /// `notifications.from` when the mailer is made (``MailNotifier/smtpConfiguration(_:from:)``); unknown keys are
    /// reported by ``AgentConfiguration/checkNestedKeys(_:)``.
    init(settings decoder: any Decoder) throws {
        enum Key: String, CodingKey {
            case url, security, username, passwordFile, password, caFile, verifyPeer, timeoutSeconds, maxAttempts
        }
        let c = try decoder.container(keyedBy: Key.self)
        let security = try c.decodeIfPresent(String.self, forKey: .security)
        try AgentConfiguration.checkChoice(security, "$.notifications.smtp.security")
        self.init(
            url: try c.decode(String.self, forKey: .url),
            security: security.flatMap(Security.init(rawValue:)) ?? .startTLS,
            username: try c.decodeIfPresent(String.self, forKey: .username),
            password: try c.decodeIfPresent(String.self, forKey: .password),
            passwordFile: try c.decodeIfPresent(String.self, forKey: .passwordFile), from: "",
            caFile: try c.decodeIfPresent(String.self, forKey: .caFile),
            verifyPeer: try c.decodeIfPresent(Bool.self, forKey: .verifyPeer) ?? true)
        if let t = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) { timeoutSeconds = Int(t.rounded(.up)) }
        if let m = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) { maxAttempts = m }
    }
}
