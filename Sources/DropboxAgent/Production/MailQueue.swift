import Delivery
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// A durable queue of notification mails: one file per message, `<data>/mailqueue/<jobId>.json`, written (fsync'd)
/// before the request's terminal status, and sent by a loop of its own, outside any job slot: an SMTP server that
/// is down or never answers delays mail, never the next request.
///
/// Each recipient is `pending` (not tried yet), `retrying` (a transient failure; `nextAttemptAt` says when), `sent`
/// or `failed` (a permanent 5xx, or still failing `notifications.retryHorizonSeconds` after the message was queued).
/// After every attempt the request's status (its record and status file, while they still describe that job) gets
/// the new `notifications`.
/// Sending is at least once: a crash between the server's acceptance and the queue update sends again (same
/// Message-ID, so receivers can tell).
final class MailQueue: Sendable {
    struct Recipient: Codable, Sendable, Equatable {
        var to: String
        var state: String
        var attempts: Int = 0
        var nextAttemptAt: Double?
        var error: String?
        var outboxFile: String?
    }

    struct Entry: Codable, Sendable, Equatable {
        var id: String
        /// The status file to update and the job it must still describe (its `requestFile` lies under `jobDirectory`).
        var statusPath: String
        var jobDirectory: String
        var from: String
        var subject: String
        var body: String
        var messageId: String
        var date: Double
        var queuedAt: Double
        var recipients: [Recipient]
        /// Whether the status file shows the recipients' latest states.
        var statusSynced: Bool?
        /// `requester` or `operator` (nil: a queue entry written before roles existed).
        var role: String?
    }

    let directory: String
    let mailer: any Mailer
    let outbox: String?
    let initialDelay: Double
    let horizon: Double
    let logger: Logger
    /// The requests' status records (nil: statuses are not updated).
    let records: StatusRecords?

    init(
        directory: String, mailer: any Mailer, outbox: String?, initialDelay: Double, horizon: Double,
        records: StatusRecords?, logger: Logger
    ) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        self.directory = directory
        self.records = records
        self.mailer = mailer
        self.outbox = outbox
        self.initialDelay = initialDelay
        self.horizon = horizon
        self.logger = logger
    }

    /// Queues `entry` durably, once per id (a resumed conclusion does not queue it twice).
    /// - Returns: the notifications the status shows now.
    func enqueue(_ entry: Entry) throws -> [StatusDocument.Notification] {
        _ = try AtomicFile.create(try encodeJSON(entry), at: path(entry.id))
        let stored = FileManager.default.readJSON(Entry.self, at: path(entry.id)) ?? entry
        return Self.notifications(stored)
    }

    private func path(_ id: String) -> String { directory + "/" + id + ".json" }

    /// Sends every message with a recipient that is due, then updates the queue and the status files.
    func sendDue(now: Double = Date().timeIntervalSince1970) async {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter {
            $0.hasSuffix(".json") && !$0.hasPrefix(".")
        }
        for name in names.sorted() {
            guard var entry = FileManager.default.readJSON(Entry.self, at: directory + "/" + name) else { continue }
            let due = entry.recipients.indices.filter {
                ["pending", "retrying"].contains(entry.recipients[$0].state)
                    && (entry.recipients[$0].nextAttemptAt ?? 0) <= now
            }
            if !due.isEmpty {
                await attempt(&entry, recipients: due)
                entry.statusSynced = false
            }
            if entry.statusSynced != true {
                entry.statusSynced = updateStatus(entry)
                do { try AtomicFile.write(try encodeJSON(entry), to: path(entry.id)) } catch {
                    logger.warning(
                        "cannot update the mail queue", metadata: ["path": "\(path(entry.id))", "error": "\(error)"])
                }
            }
            if entry.statusSynced == true,
                !entry.recipients.contains(where: { ["pending", "retrying"].contains($0.state) })
            {
                unlink(path(entry.id))
            }
        }
    }

    private func attempt(_ entry: inout Entry, recipients due: [Int]) async {
        let now = Date().timeIntervalSince1970
        var addresses: [MailAddress] = []
        for i in due {
            entry.recipients[i].attempts += 1
            if let a = try? MailAddress(entry.recipients[i].to) {
                addresses.append(a)
            } else {
                entry.recipients[i].state = "failed"
                entry.recipients[i].error = "invalid address"
            }
        }
        guard !addresses.isEmpty, let sender = try? MailAddress(entry.from) else { return }
        let message = MailMessage(
            from: sender, to: addresses, subject: entry.subject, body: entry.body,
            date: Date(timeIntervalSince1970: entry.date),
            messageId: entry.messageId)
        var outcome: [String: (sent: Bool, error: DeliveryError?)] = [:]
        do {
            for receipt in try await mailer.send(message) {
                outcome[receipt.recipient.description] = (receipt.isSent, receipt.error)
            }
        } catch {
            let e = (error as? DeliveryError) ?? DeliveryError(.smtpTransient, "\(error)")
            for a in addresses { outcome[a.description] = (false, e) }
        }
        let file = outbox.flatMap { MailNotifier.outboxFile(in: $0, messageId: message.messageId) }
        for i in due where entry.recipients[i].state != "failed" {
            let result =
                outcome[entry.recipients[i].to]
                ?? (try? MailAddress(entry.recipients[i].to)).flatMap { outcome[$0.description] }
            var meta: Logger.Metadata = [
                "status.file": "\(entry.statusPath)", "mail.to": "\(entry.recipients[i].to)",
                "mail.messageId": "\(entry.messageId)",
                "mail.transport": "\(outbox == nil ? "smtp" : "outbox")",
                "mail.attempt": .stringConvertible(entry.recipients[i].attempts),
            ]
            if let result, result.sent {
                // Written to the outbox is not delivered: someone still has to send it.
                entry.recipients[i].state = outbox == nil ? "sent" : "queued"
                entry.recipients[i].error = nil
                entry.recipients[i].nextAttemptAt = nil
                entry.recipients[i].outboxFile = file
                if let file { meta["mail.file"] = "\(file)" }
                logger.info(outbox == nil ? "mail sent" : "mail queued in the outbox", metadata: meta)
                continue
            }
            let error = result?.error
            entry.recipients[i].error = error.map { "\($0)" } ?? "no receipt from the mailer"
            let permanent = (error?.smtpReply).map { (500..<600).contains($0) } ?? false
            let delay = min(3600, initialDelay * pow(2, Double(min(entry.recipients[i].attempts - 1, 20))))
            if permanent || now + delay - entry.queuedAt > horizon {
                entry.recipients[i].state = "failed"
                entry.recipients[i].nextAttemptAt = nil
            } else {
                entry.recipients[i].state = "retrying"
                entry.recipients[i].nextAttemptAt = now + delay
            }
            meta["state"] = "\(entry.recipients[i].state)"
            meta["error"] = "\(entry.recipients[i].error ?? "")"
            if let next = entry.recipients[i].nextAttemptAt {
                meta["mail.nextAttempt.unixSeconds"] = .stringConvertible(next)
            }
            // For good: error; will be tried again: warning (one line per attempt either way).
            if entry.recipients[i].state == "failed" {
                logger.error("mail not sent", metadata: meta)
            } else {
                logger.warning("mail not sent", metadata: meta)
            }
        }
    }

    /// Writes the recipients' states into the status file, if it still describes the job that queued the mail.
    /// - Returns: false to try again later: the job is still concluding (its status does not point at its final
    ///   home yet) or the write failed.
    private func updateStatus(_ entry: Entry) -> Bool {
        let name = StatusRecords.name(ofOutput: entry.statusPath)
        guard let records, let doc = records.read(name) else { return true }
        guard let requestFile = doc.requestFile, requestFile.hasPrefix(entry.jobDirectory + "/") else {
            return !(doc.requestFile?.contains("/jobs/" + entry.id + "/") ?? false)
        }
        do {
            try records.modifyConcluded(name: name, ifRequestFile: requestFile) { doc in
                doc.notifications = Self.merged(doc.notifications, with: entry)
            }
        } catch {
            logger.warning(
                "cannot write the status file", metadata: ["path": "\(entry.statusPath)", "error": "\(error)"])
            return false
        }
        return true
    }

    /// The status's notifications with this entry's recipients replaced (the other message's stay): requesters first.
    static func merged(_ existing: [StatusDocument.Notification]?, with entry: Entry) -> [StatusDocument.Notification] {
        let mine = notifications(entry)
        let others = (existing ?? []).filter { n in !(n.role == entry.role && mine.contains { $0.to == n.to }) }
        return entry.role == "operator" ? others + mine : mine + others
    }

    static func notifications(_ entry: Entry) -> [StatusDocument.Notification] {
        entry.recipients.map {
            StatusDocument.Notification(
                to: $0.to, state: $0.state, role: entry.role, error: $0.error, outboxFile: $0.outboxFile,
                attempts: $0.attempts,
                nextAttemptAt: $0.nextAttemptAt.map { Timestamp.string(Date(timeIntervalSince1970: $0)) })
        }
    }
}
