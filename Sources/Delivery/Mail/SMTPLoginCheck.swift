internal import CCurl
internal import FoundationEssentials
internal import Glibc

extension SMTPMailer {
    /// Logs in to the server the way a send would — connect, EHLO, STARTTLS (or implicit TLS), AUTH — then sends
    /// `NOOP` and `QUIT`. No `MAIL FROM`, no message: nothing is sent. Used by `dropbox-agent check`.
    ///
    /// - Returns: what was verified, e.g. "STARTTLS, AUTH as agent".
    /// - Throws: ``DeliveryError`` with the exact failure: `smtpAuthenticationFailed` (the server's reply),
    ///   `smtpTLSFailed`, `smtpTransient` (cannot connect, timeout) or `smtpRejected`.
    public func verifyLogin() async throws -> String {
        let configuration = self.configuration
        let password = try readPassword()
        let outcome: Result<String, DeliveryError> = await BlockingWork.run { _ in
            Self.login(configuration, password: password)
        }
        return try outcome.get()
    }

    private static func login(_ configuration: SMTPConfiguration, password: String?) -> Result<String, DeliveryError> {
        let handle: CurlHandle
        do throws(DeliveryError) { handle = try CurlHandle() } catch { return .failure(error) }
        configuration.applyConnection(to: handle, password: password)
        // Without MAIL_RCPT and UPLOAD, libcurl's SMTP sends this one command after the login, then QUIT.
        handle.set(CURLOPT_CUSTOMREQUEST, "NOOP")
        handle.set(CURLOPT_CONNECTTIMEOUT, min(30, configuration.timeoutSeconds))
        handle.set(CURLOPT_TIMEOUT, configuration.timeoutSeconds)
        _ = ccurl_setopt_write(handle.raw) { _, size, count, _ in size * count }  // the NOOP reply: discarded
        let code = handle.perform()
        let reply = handle.long(CURLINFO_RESPONSE_CODE)
        let detail = handle.describe(code) + (reply == 0 ? "" : " (last reply \(reply))")
        let server = configuration.url
        let tls =
            switch configuration.security {
            case .startTLS: "STARTTLS"
            case .implicitTLS: "implicit TLS"
            case .none: "no TLS"
            }
        func failure(_ kind: DeliveryError.Code, _ text: String, hint: String? = nil) -> Result<String, DeliveryError> {
            .failure(
                DeliveryError(kind, text, hint: hint, curlCode: Int(code.rawValue), smtpReply: reply == 0 ? nil : reply)
            )
        }
        switch code {
        case CURLE_OK:
            return .success(tls + (configuration.username.map { ", AUTH as \($0)" } ?? ", no AUTH configured"))
        case CURLE_LOGIN_DENIED:
            return failure(
                .smtpAuthenticationFailed,
                "\(server) refused the SMTP login of '\(configuration.username ?? "")': \(detail)",
                hint: "check notifications.smtp.username and password (file)")
        case CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_USE_SSL_FAILED,
            CURLE_SSL_CERTPROBLEM, CURLE_SSL_ISSUER_ERROR:
            return failure(
                .smtpTLS, "TLS with \(server) failed: \(detail)", hint: "check caFile / verifyPeer and security")
        case CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT, CURLE_COULDNT_RESOLVE_HOST, CURLE_RECV_ERROR,
            CURLE_SEND_ERROR,
            CURLE_GOT_NOTHING:
            return failure(.smtpTransient, "cannot talk to \(server): \(detail)")
        default:
            if reply == 530 || reply == 535 || reply == 534 {
                return failure(.smtpAuthenticationFailed, "\(server) refused the SMTP login: \(detail)")
            }
            return failure(.smtpRejected, "\(server): \(detail)")
        }
    }
}
