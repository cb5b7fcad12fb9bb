internal import CCurl
internal import FoundationEssentials
internal import Glibc

/// A ``Mailer`` speaking SMTP through libcurl: STARTTLS (required) or implicit TLS, AUTH, one transaction per
/// recipient so that each recipient gets its own outcome.
///
/// Transient failures (4xx replies, connection errors, timeouts) are retried with exponential backoff up to
/// ``SMTPConfiguration/maxAttempts``; permanent ones (5xx) fail that recipient only. A failed login or TLS
/// failure fails every recipient (`smtpAuthenticationFailed`, `smtpTLSFailed`) without further attempts.
public struct SMTPMailer: Mailer {
    /// The server configuration.
    public let configuration: SMTPConfiguration

    /// Creates a mailer after validating `configuration`.
    /// - Throws: ``DeliveryError`` with code `invalidConfiguration`.
    public init(configuration: SMTPConfiguration) throws(DeliveryError) {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Sends `message` to every distinct recipient; see ``Mailer/send(_:)``.
    public func send(_ message: MailMessage) async throws -> [MailReceipt] {
        let password = try readPassword()
        let sender = try MailAddress(configuration.from).address
        let payload = Array(message.rendered().utf8)
        var seen = Set<String>()
        let recipients = message.to.filter { seen.insert($0.address.lowercased()).inserted }
        var receipts: [MailReceipt] = []
        var fatal: DeliveryError?
        for recipient in recipients {
            if let fatal {
                receipts.append(MailReceipt(recipient: recipient, outcome: .failed(fatal)))
                continue
            }
            let outcome = await deliver(payload, from: sender, to: recipient, password: password)
            if case .failed(let error) = outcome, error.code == .smtpAuthenticationFailed || error.code == .smtpTLS {
                fatal = error
            }
            receipts.append(MailReceipt(recipient: recipient, outcome: outcome))
        }
        return receipts
    }

    func readPassword() throws(DeliveryError) -> String? {
        guard let file = configuration.passwordFile else { return configuration.password }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw DeliveryError(.invalidConfiguration, "cannot read SMTP password file '\(file)'")
        }
        return text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    }

    private func deliver(
        _ payload: [UInt8], from sender: String, to recipient: MailAddress, password: String?
    ) async
        -> MailReceipt.Outcome
    {
        var delay = configuration.retryInitialBackoffSeconds
        var attempt = 0
        while true {
            attempt += 1
            let transaction = SMTPTransaction(
                configuration: configuration, password: password, sender: sender, recipient: recipient.address,
                payload: payload)
            let result = await BlockingWork.run { flag in transaction.perform(cancelled: flag) }
            switch result {
            case .sent:
                return .sent
            case .permanent(let error):
                return .failed(error)
            case .transient(var error):
                if attempt >= max(1, configuration.maxAttempts) || Task.isCancelled {
                    error.message += " (gave up after \(attempt) attempts)"
                    return .failed(error)
                }
                try? await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                delay = min(delay * 2, configuration.retryMaxBackoffSeconds)
            }
        }
    }
}

/// One SMTP transaction (connect, TLS, AUTH, MAIL FROM, RCPT TO, DATA) with libcurl, on a dedicated thread.
struct SMTPTransaction {
    enum Result: Sendable {
        case sent
        case transient(DeliveryError)
        case permanent(DeliveryError)
    }

    let configuration: SMTPConfiguration
    let password: String?
    let sender: String
    let recipient: String
    let payload: [UInt8]

    /// The upload state read by libcurl's read callback.
    final class Upload {
        let bytes: [UInt8]
        var offset = 0
        let cancelled: CancellationFlag
        init(bytes: [UInt8], cancelled: CancellationFlag) {
            self.bytes = bytes
            self.cancelled = cancelled
        }
    }

    func perform(cancelled: CancellationFlag) -> Result {
        let handle: CurlHandle
        do throws(DeliveryError) {
            handle = try CurlHandle()
        } catch {
            return .permanent(error)
        }
        let upload = Upload(bytes: payload, cancelled: cancelled)
        configuration.applyConnection(to: handle, password: password)
        handle.set(CURLOPT_MAIL_FROM, "<\(sender)>")
        handle.set(CURLOPT_MAIL_RCPT, list: ["<\(recipient)>"])
        handle.set(CURLOPT_UPLOAD, 1)
        handle.set(CURLOPT_INFILESIZE_LARGE, payload.count)
        handle.set(CURLOPT_CONNECTTIMEOUT, min(30, configuration.timeoutSeconds))
        handle.set(CURLOPT_TIMEOUT, configuration.timeoutSeconds)
        handle.set(CURLOPT_NOPROGRESS, 0)
        let opaque = Unmanaged.passUnretained(upload).toOpaque()
        handle.set(CURLOPT_READDATA, pointer: opaque)
        handle.set(CURLOPT_XFERINFODATA, pointer: opaque)
        _ = ccurl_setopt_read(handle.raw) { buffer, size, count, user in
            let upload = Unmanaged<Upload>.fromOpaque(user!).takeUnretainedValue()
            let n = min(size * count, upload.bytes.count - upload.offset)
            guard n > 0, let buffer else { return 0 }
            upload.bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + upload.offset, byteCount: n)
            }
            upload.offset += n
            return n
        }
        _ = ccurl_setopt_xferinfo(handle.raw) { user, _, _, _, _ in
            Unmanaged<Upload>.fromOpaque(user!).takeUnretainedValue().cancelled.isCancelled ? 1 : 0
        }
        let code = withExtendedLifetime(upload) { handle.perform() }
        return classify(code, handle: handle, cancelled: cancelled)
    }

    private func classify(_ code: CURLcode, handle: CurlHandle, cancelled: CancellationFlag) -> Result {
        if code == CURLE_OK { return .sent }
        let reply = handle.long(CURLINFO_RESPONSE_CODE)
        let detail = handle.describe(code)
        let server = configuration.url
        func error(_ kind: DeliveryError.Code, _ text: String, hint: String? = nil) -> DeliveryError {
            DeliveryError(kind, text, hint: hint, curlCode: Int(code.rawValue), smtpReply: reply == 0 ? nil : reply)
        }
        if cancelled.isCancelled { return .permanent(error(.cancelled, "sending to <\(recipient)> cancelled")) }
        switch code {
        case CURLE_LOGIN_DENIED:
            return .permanent(
                error(
                    .smtpAuthenticationFailed,
                    "\(server) refused the SMTP login of '\(configuration.username ?? "")': \(detail)",
                    hint: "check the SMTP user name and password (file)"))
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_USE_SSL_FAILED,
            CURLE_SSL_CERTPROBLEM, CURLE_SSL_ISSUER_ERROR:
            return .permanent(
                error(
                    .smtpTLS, "TLS with \(server) failed: \(detail)",
                    hint: "check caFile / verifyPeer and that the server offers STARTTLS or implicit TLS as configured")
            )
        default:
            if !(400..<600).contains(reply)
                && [
                    CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_RECV_ERROR, CURLE_SEND_ERROR,
                    CURLE_GOT_NOTHING,
                    CURLE_COULDNT_RESOLVE_HOST,
                ].contains(code)
            {
                return .transient(error(.smtpTransient, "cannot talk to \(server): \(detail)"))
            }
            if (400..<500).contains(reply) {
                return .transient(
                    error(.smtpTransient, "\(server) temporarily refused mail to <\(recipient)> (\(reply)): \(detail)"))
            }
            if (500..<600).contains(reply) {
                let authRequired = reply == 530 || reply == 535
                return .permanent(
                    error(
                        authRequired ? .smtpAuthenticationFailed : .smtpRejected,
                        "\(server) rejected mail to <\(recipient)> (\(reply)): \(detail)"))
            }
            return .permanent(error(.smtpRejected, "sending to <\(recipient)> via \(server) failed: \(detail)"))
        }
    }
}

extension SMTPConfiguration {
    /// The connection part of a session, shared by sending and by the login check: server, TLS (STARTTLS or
    /// implicit: `CURLUSESSL_ALL`; none), CA file, peer verification and AUTH credentials.
    func applyConnection(to handle: CurlHandle, password: String?) {
        handle.set(CURLOPT_URL, url)
        handle.set(CURLOPT_PROTOCOLS_STR, "smtp,smtps")
        handle.set(CURLOPT_USE_SSL, Int((security == .none ? CURLUSESSL_NONE : CURLUSESSL_ALL).rawValue))
        handle.setTLS(caFile: caFile, verifyPeer: verifyPeer)
        if let username {
            handle.set(CURLOPT_USERNAME, username)
            handle.set(CURLOPT_PASSWORD, password ?? "")
        }
    }
}
