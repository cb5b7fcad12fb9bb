public import FoundationEssentials
internal import Glibc

/// A plain-text e-mail.
public struct MailMessage: Sendable {
    /// The `From:` header address.
    public var from: MailAddress
    /// The recipients (`To:` header and, for ``SMTPMailer``, the envelope).
    public var to: [MailAddress]
    /// The subject; CR/LF and other control characters are replaced by spaces when rendered.
    public var subject: String
    /// The UTF-8 body; line endings are normalised to CRLF.
    public var body: String
    /// The `Date:` header.
    public var date: Date
    /// The `Message-ID:` value including angle brackets, e.g. `<…@example.org>`.
    public var messageId: String

    /// Creates a message; the message id defaults to a random UUID at the sender's domain.
    public init(
        from: MailAddress, to: [MailAddress], subject: String, body: String, date: Date = Date(),
        messageId: String? = nil
    ) {
        self.from = from
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        let cleaned = messageId?.filter { !$0.isNewline && $0 != "<" && $0 != ">" && $0 != " " }
        self.messageId =
            "<" + (cleaned.flatMap { $0.isEmpty ? nil : $0 } ?? "\(UUID().uuidString.lowercased())@\(from.domain)")
            + ">"
    }

    /// The message as RFC 5322 text with CRLF line endings: Date, From, To, Subject (RFC 2047-encoded if not
    /// ASCII, folded), Message-ID, `Auto-Submitted: auto-generated` (RFC 3834), MIME-Version, `Content-Type: text/plain; charset=utf-8`, and a 7bit or
    /// quoted-printable body.
    public func rendered() -> String {
        let cleanSubject = String(
            subject.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        let subjectValue =
            cleanSubject.unicodeScalars.allSatisfy({ $0.isASCII })
            ? cleanSubject : MailEncoding.encodedWord(cleanSubject)
        let lines = body.replacingAll("\r\n", with: "\n").replacingAll("\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let plain = body.unicodeScalars.allSatisfy { $0.isASCII } && lines.allSatisfy { $0.utf8.count <= 998 }
        var headers = [
            "Date: " + CivilTime(secondsSince1970: date.timeIntervalSince1970).rfc5322,
            MailEncoding.header("From", from.headerValue),
            MailEncoding.header("To", to.map(\.headerValue).joined(separator: ", ")),
            MailEncoding.header("Subject", subjectValue),
            "Message-ID: " + messageId,
            // RFC 3834: automatic; vacation responders and the like must not answer it.
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
        ]
        headers.append("Content-Transfer-Encoding: " + (plain ? "7bit" : "quoted-printable"))
        let encodedBody = plain ? lines.joined(separator: "\r\n") : MailEncoding.quotedPrintable(lines: lines)
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + encodedBody
            + (encodedBody.hasSuffix("\r\n") ? "" : "\r\n")
    }
}

/// What happened to one recipient of a message.
public struct MailReceipt: Sendable {
    /// Delivery outcome for one recipient.
    public enum Outcome: Sendable {
        /// The server accepted the message for this recipient.
        case sent
        /// The message was not delivered to this recipient.
        case failed(DeliveryError)
    }

    /// The recipient.
    public var recipient: MailAddress
    /// What happened.
    public var outcome: Outcome

    /// Whether the message was accepted for this recipient.
    public var isSent: Bool {
        if case .sent = outcome { return true }
        return false
    }

    /// The error, if it failed.
    public var error: DeliveryError? {
        if case .failed(let error) = outcome { return error }
        return nil
    }
}

/// Something that sends mail.
public protocol Mailer: Sendable {
    /// Sends `message` to each of its recipients.
    ///
    /// - Returns: one receipt per distinct recipient; a rejected recipient is a failed receipt, not an error.
    /// - Throws: ``DeliveryError`` only when nothing can be attempted (e.g. unreadable configuration).
    func send(_ message: MailMessage) async throws -> [MailReceipt]
}
