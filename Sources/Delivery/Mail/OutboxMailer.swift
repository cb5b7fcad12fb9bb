internal import FoundationEssentials
internal import Glibc

/// A ``Mailer`` that writes each message to `<directory>/<UTC timestamp>-<message id>.eml` (atomically:
/// temporary file, fsync, rename), for sites without SMTP or for tests.
public struct OutboxMailer: Mailer {
    /// Where messages are written.
    public let directory: String

    /// Creates an outbox in `directory` (created if missing).
    public init(directory: String) { self.directory = directory }

    /// Writes the message; every recipient is reported as sent.
    public func send(_ message: MailMessage) async throws -> [MailReceipt] {
        try FileSystem.makeDirectories(directory)
        let id = String(
            message.messageId.unicodeScalars.map {
                MailAddress.isAtext($0) || $0 == "." || $0 == "@" ? Character($0) : "_"
            })
        let path = FileSystem.join(
            directory, "\(CivilTime(secondsSince1970: message.date.timeIntervalSince1970).iso8601Basic)-\(id).eml")
        let temporary = FileSystem.temporarySibling(of: path, tag: "tmp")
        let writer = try HashingFileWriter(path: temporary, variant: .crc32, resume: false)
        let bytes = Array(message.rendered().utf8)
        let failure: DeliveryError? = bytes.withUnsafeBytes { raw in
            do throws(DeliveryError) {
                try writer.write(raw)
                try writer.finish()
                try FileSystem.rename(temporary, path)
                return nil
            } catch {
                return error
            }
        }
        if let failure {
            FileSystem.remove(temporary)
            throw failure
        }
        try? AtomicFile.syncDirectory(directory)
        var seen = Set<String>()
        return message.to.filter { seen.insert($0.address.lowercased()).inserted }.map {
            MailReceipt(recipient: $0, outcome: .sent)
        }
    }
}
