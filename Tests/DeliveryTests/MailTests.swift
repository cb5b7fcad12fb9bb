import Delivery
import Foundation
import Testing
import DropboxTestKit

@Suite("MailAddress and MailMessage", .tags(.unit))
struct MailFormatTests {
    @Test(
        "valid addresses parse",
        arguments: [
            ("alice@example.org", "alice@example.org", nil as String?),
            ("Alice Smith <alice@example.org>", "alice@example.org", "Alice Smith"),
            ("\"Doe, John\" <j.doe+alma@sub.example.org>", "j.doe+alma@sub.example.org", "Doe, John"),
            ("Jöhn Dœ <j@[127.0.0.1]>", "j@[127.0.0.1]", "Jöhn Dœ"),
        ])
    func valid(text: String, address: String, name: String?) throws {
        let parsed = try MailAddress(text)
        #expect(parsed.address == address)
        #expect(parsed.displayName == name)
    }

    @Test(
        "header injection and malformed addresses are rejected",
        arguments: [
            "alice@example.org\r\nBcc: victim@example.org", "alice@example.org\nX: y", "Alice <alice@example.org>\r\n",
            "Eve <eve@example.org>, Mallory <m@example.org>", "alice@example.org, bob@example.org",
            "<alice@example.org", "alice@example.org>", "Alice <<alice@example.org>>", "Alice <alice@example.org> tail",
            "\"Al\"ice\" <a@example.org>", "no-at-sign", "a@b@c.org", "@example.org", "alice@", "al ice@example.org",
            "alice@exa mple.org", "alice@-example.org", ".alice@example.org", "al..ice@example.org",
            "ålice@example.org",
            "alice@example.org\u{0}", "x\t<a@b.org>",
            String(repeating: "a", count: 64) + "@" + String(repeating: "b.", count: 95) + "org",
        ])
    func invalid(text: String) {
        #expect(throws: DeliveryError.self) { try MailAddress(text) }
        do { _ = try MailAddress(text) } catch { #expect(error.code == .invalidMailAddress) }
    }

    @Test("rendered message: CRLF, required headers, encoded subject, quoted-printable body, no injection")
    func rendering() throws {
        let message = MailMessage(
            from: try MailAddress("ALMA Restores <restores@alma.example.org>"),
            to: [try MailAddress("Jöhn <john@example.org>"), try MailAddress("b@example.org")],
            subject: "Restore of uid://A001/X1/X2 — done ✓\r\nBcc: evil@example.org",
            body: "Dear user,\nyour data (2.3 GB) is ready: naïve café.\n.\nBye",
            date: Date(timeIntervalSince1970: 1_700_000_000), messageId: "abc123@alma.example.org")
        let text = message.rendered()
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "only CRLF line endings")
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\r"))
        let (head, body) = try #require(text.split(separator: "\r\n\r\n", maxSplits: 1).map(String.init).pairs)
        #expect(head.contains("Date: Tue, 14 Nov 2023 22:13:20 +0000"))
        #expect(head.contains("From: ALMA Restores <restores@alma.example.org>"))
        #expect(head.contains("To: =?utf-8?b?SsO2aG4=?= <john@example.org>, b@example.org"))
        #expect(head.contains("Message-ID: <abc123@alma.example.org>"))
        #expect(head.contains("MIME-Version: 1.0"))
        #expect(head.contains("Auto-Submitted: auto-generated"))
        #expect(head.contains("Content-Type: text/plain; charset=utf-8"))
        #expect(head.contains("Content-Transfer-Encoding: quoted-printable"))
        #expect(head.contains("Subject: =?utf-8?b?"))
        // No header line starts with Bcc: the CR/LF in the subject were neutralised (and it is encoded anyway).
        #expect(!head.split(separator: "\r\n").contains { $0.hasPrefix("Bcc:") })
        // Every header line is short and continuation lines start with white space.
        for line in head.split(separator: "\r\n") {
            #expect(line.count <= 78)
            #expect(line.first == " " || line.contains(":"))
        }
        #expect(body.contains("na=C3=AFve caf=C3=A9."))
        let ascii = MailMessage(
            from: try MailAddress("a@example.org"), to: [try MailAddress("b@example.org")], subject: "plain",
            body: "hello\nworld")
        #expect(ascii.rendered().contains("Content-Transfer-Encoding: 7bit"))
        #expect(ascii.rendered().hasSuffix("\r\n\r\nhello\r\nworld\r\n"))
        #expect(ascii.messageId.hasSuffix("@example.org>"))
    }

    @Test("OutboxMailer writes one .eml atomically")
    func outbox() async throws {
        let dir = try TemporaryDirectory("outbox")
        defer { dir.remove() }
        let message = MailMessage(
            from: try MailAddress("a@example.org"),
            to: [try MailAddress("b@example.org"), try MailAddress("B@example.org")],
            subject: "s", body: "b", messageId: "m1@example.org")
        let receipts = try await OutboxMailer(directory: dir.path + "/outbox").send(message)
        #expect(receipts.count == 1 && receipts.allSatisfy(\.isSent))
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/outbox")
        #expect(files.count == 1)
        #expect(files[0].hasSuffix("-m1@example.org_.eml") || files[0].hasSuffix("_m1@example.org_.eml"))
        #expect(try String(contentsOfFile: dir.path + "/outbox/" + files[0], encoding: .utf8) == message.rendered())
    }
}

extension Array where Element == String {
    fileprivate var pairs: (String, String)? { count == 2 ? (self[0], self[1]) : nil }
}

/// One aiosmtpd server per test.
private struct SMTPFixture {
    let dir: TemporaryDirectory
    let server: TestService

    init(mode: TestService.SMTPMode = .startTLS) throws {
        let dir = try TemporaryDirectory("smtp")
        do {
            server = try TestService.smtpServer(
                runDirectory: try dir.sub("run"), user: "alice", password: "s3cret", mode: mode)
        } catch {
            dir.remove()
            throw error
        }
        self.dir = dir
    }

    func configuration(
        password: String = "s3cret", security: SMTPConfiguration.Security = .startTLS, caFile: Bool = true
    ) -> SMTPConfiguration {
        SMTPConfiguration(
            url: "\(security == .implicitTLS ? "smtps" : "smtp")://127.0.0.1:\(server.port)", security: security,
            username: "alice", password: password, from: "restores@alma.example.org",
            caFile: caFile ? server.runDirectory + "/cert.pem" : nil, timeoutSeconds: 10, maxAttempts: 3,
            retryInitialBackoffSeconds: 0.1, retryMaxBackoffSeconds: 0.5)
    }

    /// The messages the server accepted: (envelope JSON, raw message).
    func received() throws -> [([String: Any], String)] {
        let mail = server.runDirectory + "/mail"
        let names = try FileManager.default.contentsOfDirectory(atPath: mail).filter { $0.hasSuffix(".eml") }.sorted()
        return try names.map { name in
            let base = mail + "/" + name.dropLast(4)
            let meta =
                try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: base + ".json")))
                as? [String: Any] ?? [:]
            return (meta, try String(contentsOfFile: base + ".eml", encoding: .utf8))
        }
    }

    func message(to recipients: [String]) throws -> MailMessage {
        MailMessage(
            from: try MailAddress("ALMA Restores <restores@alma.example.org>"),
            to: try recipients.map { try MailAddress($0) },
            subject: "Restore ready: uid://A001/X1/X2 ✓",
            body: "Your measurement sets are ready.\n.\nA line with a dot above.")
    }

    func tearDown() {
        server.stop()
        dir.remove()
    }
}

@Suite("SMTPMailer against aiosmtpd", .serialized, .tags(.integration), .selected(.integration))
struct SMTPMailerTests {
    @Test("STARTTLS + AUTH: delivered with the right headers and envelope")
    func success() async throws {
        let fixture = try SMTPFixture()
        defer { fixture.tearDown() }
        let message = try fixture.message(to: ["pi@example.org", "Co I <coi@example.org>"])
        let receipts = try await SMTPMailer(configuration: fixture.configuration()).send(message)
        #expect(receipts.map(\.isSent) == [true, true])
        let received = try fixture.received()
        #expect(received.count == 2)
        #expect(
            Set(received.flatMap { ($0.0["rcpt_tos"] as? [String]) ?? [] }) == ["pi@example.org", "coi@example.org"])
        for (meta, raw) in received {
            #expect(meta["mail_from"] as? String == "restores@alma.example.org")
            #expect(meta["auth_user"] as? String == "alice")
            #expect(meta["tls"] as? Bool == true)
            #expect(raw.contains("Message-ID: \(message.messageId)"))
            #expect(raw.contains("From: ALMA Restores <restores@alma.example.org>"))
            #expect(raw.contains("To: pi@example.org, Co I <coi@example.org>"))
            #expect(raw.contains("Subject: =?utf-8?b?"))
            #expect(raw.contains("\n.\r\nA line with a dot above.") || raw.contains("\n.\nA line with a dot above."))
        }
    }

    @Test("implicit TLS (smtps) works too")
    func implicitTLS() async throws {
        let fixture = try SMTPFixture(mode: .implicitTLS)
        defer { fixture.tearDown() }
        let receipts = try await SMTPMailer(configuration: fixture.configuration(security: .implicitTLS))
            .send(try fixture.message(to: ["pi@example.org"]))
        #expect(receipts.map(\.isSent) == [true])
        #expect(try fixture.received().count == 1)
    }

    @Test("wrong password: every recipient fails with smtpAuthenticationFailed, nothing delivered")
    func wrongPassword() async throws {
        let fixture = try SMTPFixture()
        defer { fixture.tearDown() }
        let receipts = try await SMTPMailer(configuration: fixture.configuration(password: "wrong"))
            .send(try fixture.message(to: ["pi@example.org", "coi@example.org"]))
        #expect(receipts.count == 2)
        #expect(receipts.allSatisfy { $0.error?.code == .smtpAuthenticationFailed })
        #expect(receipts.first?.error?.curlCode == 67)
        #expect(try fixture.received().isEmpty)
    }

    @Test("an unverifiable certificate fails with smtpTLSFailed")
    func untrustedCertificate() async throws {
        let fixture = try SMTPFixture()
        defer { fixture.tearDown() }
        let receipts = try await SMTPMailer(configuration: fixture.configuration(caFile: false))
            .send(try fixture.message(to: ["pi@example.org"]))
        #expect(receipts.first?.error?.code == .smtpTLS)
        #expect(try fixture.received().isEmpty)
    }

    @Test("550 at RCPT fails that recipient only; 554 after DATA fails; 451 is retried and delivered")
    func rejections() async throws {
        let fixture = try SMTPFixture()
        defer { fixture.tearDown() }
        let receipts = try await SMTPMailer(configuration: fixture.configuration())
            .send(
                try fixture.message(to: [
                    "pi@example.org", "reject550@example.org", "reject554@example.org", "reject451@example.org",
                ]))
        #expect(
            receipts.map(\.recipient.address) == [
                "pi@example.org", "reject550@example.org", "reject554@example.org", "reject451@example.org",
            ])
        #expect(receipts[0].isSent)
        #expect(receipts[1].error?.code == .smtpRejected)
        #expect(receipts[1].error?.smtpReply == 550)
        #expect(receipts[2].error?.code == .smtpRejected)
        #expect(receipts[2].error?.smtpReply == 554)
        #expect(receipts[3].isSent)
        let delivered = try fixture.received().flatMap { ($0.0["rcpt_tos"] as? [String]) ?? [] }
        #expect(delivered.sorted() == ["pi@example.org", "reject451@example.org"])
    }

    @Test("configuration is validated and decodes with defaults")
    func configuration() throws {
        let json =
            #"{"url": "smtp://mail.example.org:587", "from": "agent@example.org", "username": "u", "passwordFile": "/etc/x"}"#
        let config = try JSONDecoder().decode(SMTPConfiguration.self, from: Data(json.utf8))
        #expect(
            config.security == .startTLS && config.verifyPeer && config.maxAttempts == 3 && config.timeoutSeconds == 60)
        _ = try SMTPMailer(configuration: config)
        var bad = config
        bad.security = .implicitTLS
        #expect(throws: DeliveryError.self) { try SMTPMailer(configuration: bad) }
        bad = config
        bad.from = "agent@example.org\r\nBcc: x@y.org"
        #expect(throws: DeliveryError.self) { try SMTPMailer(configuration: bad) }
    }
}
