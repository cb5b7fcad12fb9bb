import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// Sends the completion email: SMTP when configured, otherwise `.eml` files in the outbox directory.
/// A mail that cannot be sent never fails the restore; the status file says what happened per recipient.
struct MailNotifier: Notifier {
    let mailer: any Mailer
    /// Set when messages go to the outbox instead of an SMTP server.
    let outbox: String?
    let from: String
    let operators: [String]
    let logger: Logger
    /// The durable queue mail goes through (`<data>/mailqueue`).
    let queue: MailQueue

    init(configuration c: AgentConfiguration, logger: Logger) throws {
        self.logger = logger
        operators = c.notifications.operators
        var hostName = [UInt8](repeating: 0, count: 256)
        gethostname(&hostName, 255)
        let host = String(decoding: hostName.prefix { $0 != 0 }, as: UTF8.self)
        from = c.notifications.from ?? "dropbox-agent@\(host.contains(".") ? host : host + ".localdomain")"
        if let smtp = c.notifications.smtp {
            mailer = try SMTPMailer(configuration: try Self.smtpConfiguration(smtp, from: from))
            outbox = nil
        } else {
            try FileManager.default.createDirectory(
                atPath: c.notifications.outboxDirectory!, withIntermediateDirectories: true)
            mailer = OutboxMailer(directory: c.notifications.outboxDirectory!)
            outbox = c.notifications.outboxDirectory!
        }
        queue = try MailQueue(
            directory: c.dataDirectory + "/mailqueue", mailer: mailer, outbox: outbox,
            initialDelay: c.notifications.retryInitialSeconds, horizon: c.notifications.retryHorizonSeconds,
            records: StatusRecords(configuration: c), logger: logger)
    }

    /// The two messages of an outcome: the requester's (``AstronomerMail``: no server paths, no operators' hints) and the
    /// operators' (internal details), each to its own recipients; an operator who is also a requester gets both.
    func messages(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String]
    ) -> [(role: String, recipients: [String], subject: String, body: String)] {
        func unique(_ list: [String]) -> [String] {
            list.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        }
        var out: [(role: String, recipients: [String], subject: String, body: String)] = []
        let requesters = unique(request.email)
        if !requesters.isEmpty {
            out.append(
                (
                    "requester", requesters, AstronomerMail.subject(status, facts),
                    AstronomerMail.body(status, request: request, facts: facts)
                ))
        }
        if !operators.isEmpty {
            out.append(
                (
                    "operator", unique(operators), Self.subject(status, facts),
                    Self.body(status, request: request, facts: facts)
                ))
        }
        return out
    }

    func enqueue(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String], id: String, statusPath: String,
        jobDirectory: String
    ) async -> [StatusDocument.Notification] {
        let messages = messages(status, request: request, facts: facts)
        guard !messages.isEmpty else { return [] }
        let now = Date().timeIntervalSince1970
        let domain = from.split(separator: "@").last.map(String.init) ?? "localhost"
        var notes: [StatusDocument.Notification] = []
        do {
            for m in messages {
                let entry = MailQueue.Entry(
                    id: m.role == "operator" ? id + ".operators" : id, statusPath: statusPath,
                    jobDirectory: jobDirectory, from: from,
                    subject: m.subject, body: m.body, messageId: "\(UUID().uuidString.lowercased())@\(domain)",
                    date: now, queuedAt: now,
                    recipients: m.recipients.map { MailQueue.Recipient(to: $0, state: "pending") }, role: m.role)
                notes += try queue.enqueue(entry)
            }
            return notes
        } catch {
            // The queue cannot be written (full disk): try once now, so the outcome is at least known.
            logger.warning("cannot queue the notification; sending it now", metadata: ["error": "\(error)"])
            return await notify(status, request: request, facts: facts)
        }
    }

    func sendQueued() async { await queue.sendDue() }

    /// `notifications.smtp` with its sender, `from`, and the password read from `passwordFile` now (an unreadable
    /// file is a configuration error at start, not a failed mail later).
    static func smtpConfiguration(_ s: SMTPConfiguration, from: String) throws -> SMTPConfiguration {
        var config = s
        config.from = from
        if let file = s.passwordFile {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw ConfigurationError(path: "$.notifications.smtp.passwordFile", message: "cannot read \(file)")
            }
            config.password = text.trimmingScalars(where: {
                (0x0A...0x0D).contains($0.value) || [0x85, 0x2028, 0x2029].contains($0.value)
            })
            config.passwordFile = nil
        }
        return config
    }

    func notify(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String]
    ) async -> [StatusDocument.Notification] {
        var notes: [StatusDocument.Notification] = []
        for m in messages(status, request: request, facts: facts) {
            notes += await send(m.recipients, role: m.role, subject: m.subject, body: m.body, status: status)
        }
        return notes
    }

    private func send(
        _ recipients: [String], role: String, subject: String, body: String, status: StatusDocument
    ) async -> [StatusDocument.Notification] {
        var valid: [MailAddress] = []
        var notes: [StatusDocument.Notification] = []
        for r in recipients {
            do { valid.append(try MailAddress(r)) } catch {
                logger.error(
                    "mail not sent",
                    metadata: [
                        "request.name": "\(status.request)", "mail.to": "\(r)", "error": "invalid address: \(error)",
                    ])
                notes.append(.init(to: r, state: "failed", role: role, error: "\(error)"))
            }
        }
        guard !valid.isEmpty, let sender = try? MailAddress(from) else {
            return notes
                + valid.map {
                    .init(to: $0.description, state: "failed", role: role, error: "invalid sender address \(from)")
                }
        }
        let message = MailMessage(from: sender, to: valid, subject: subject, body: body)
        do {
            let receipts = try await mailer.send(message)
            let file = outbox.flatMap { Self.outboxFile(in: $0, messageId: message.messageId) }
            for receipt in receipts {
                logMail(
                    message, to: receipt.recipient.description, status: status, error: receipt.error.map { "\($0)" },
                    file: file)
                notes.append(
                    .init(
                        to: receipt.recipient.description,
                        state: receipt.isSent ? (outbox == nil ? "sent" : "queued") : "failed", role: role,
                        error: receipt.error.map { "\($0)" }, outboxFile: receipt.isSent ? file : nil))
            }
        } catch {
            for recipient in valid {
                logMail(message, to: recipient.description, status: status, error: "\(error)", file: nil)
            }
            notes += valid.map { .init(to: $0.description, state: "failed", role: role, error: "\(error)") }
        }
        return notes
    }

    /// One line per message and recipient: `mail sent` (info) or `mail not sent` (error).
    private func logMail(
        _ message: MailMessage, to recipient: String, status: StatusDocument, error: String?, file: String?
    ) {
        var meta: Logger.Metadata = [
            "request.name": "\(status.request)", "mail.to": "\(recipient)", "mail.messageId": "\(message.messageId)",
            "mail.transport": "\(outbox == nil ? "smtp" : "outbox")", "state": "\(status.state.rawValue)",
        ]
        if let file { meta["mail.file"] = "\(file)" }
        if let error {
            meta["error"] = "\(error)"
            logger.error("mail not sent", metadata: meta)
        } else {
            logger.info(outbox == nil ? "mail sent" : "mail queued in the outbox", metadata: meta)
        }
    }

    /// The `.eml` file the outbox wrote for `messageId` (its name carries the id).
    static func outboxFile(in directory: String, messageId: String) -> String? {
        let key =
            messageId.trimmingScalars(where: { $0 == "<" || $0 == ">" }).split(separator: "@").first.map(
                String.init) ?? messageId
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".eml") && $0.contains(key) }.sorted().last.map { directory + "/" + $0 }
    }

    /// The operators' subject.
    static func subject(_ s: StatusDocument, _ facts: [String: String]) -> String {
        let mous = s.mous ?? facts["mous"] ?? "?"
        let project = facts["project"].map { " (\($0))" } ?? ""
        return "[dropbox-agent] \(s.request) \(s.state.rawValue): restore of \(mous)\(project)"
    }

    /// The operators' message: everything, paths and hints included.
    static func body(_ s: StatusDocument, request: RestoreRequest, facts: [String: String]) -> String {
        var lines: [String] = [
            "For the operators (the requester, if any, got a message of their own without these details).", "",
        ]
        switch s.state {
        case .succeeded: lines.append("The calibrated measurement sets of \(s.mous ?? "?") are ready.")
        case .failed: lines.append("The restore of \(s.mous ?? "?") failed.")
        case .cancelled: lines.append("The restore of \(s.mous ?? "?") was cancelled.")
        default: lines.append("The restore of \(s.mous ?? "?") is \(s.state.rawValue).")
        }
        lines.append("")
        lines.append("Request:     \(s.request)" + (s.requestId.map { " (id \($0))" } ?? ""))
        lines.append("MOUS:        \(s.mous ?? "?")")
        if let p = facts["project"] { lines.append("Project:     \(p)") }
        if let ebs = facts["execblocks"] { lines.append("EBs:         \(ebs)") }
        lines.append("Outcome:     \(s.state.rawValue)")
        if !request.email.isEmpty { lines.append("Requester:   \(request.email.joined(separator: ", "))") }
        if let casa = s.casa {
            lines.append("CASA:        \(casa.version) (installation \(casa.installation))")
            lines.append(
                "Tables made with CASA \(casa.manifestVersion ?? "(not known: the pipeline manifest does not say, or was not read)")"
            )
        }
        if let r = s.result {
            lines.append("Download:    \(r.url ?? r.deliveryPath)")
            lines.append("Location:    \(r.deliveryPath)")
            lines.append("Measurement sets: \(r.measurementSets.joined(separator: ", "))")
            lines.append(
                "Size:        \(ByteCountText.binary(r.sizeBytes)) (\(r.sizeBytes) bytes)"
            )
            if let e = r.expiresAt { lines.append("Expires:     \(e)") }
        }
        if let started = s.startedAt.flatMap(Timestamp.date) {
            lines.append("Duration:    \(Int(Date().timeIntervalSince(started))) s")
        }
        for warning in s.warnings ?? [] {
            lines.append("")
            lines.append("Warning: \(warning)")
        }
        if let e = s.error {
            lines.append("")
            lines.append("Error [\(e.code)]: \(e.message)")
            if let h = e.hint { lines.append("What to do: \(h)") }
        }
        lines.append("")
        lines.append("-- dropbox-agent \(DropboxAgentCommand.version) on \(AgentIdentity.current.host)")
        return lines.joined(separator: "\n")
    }
}
