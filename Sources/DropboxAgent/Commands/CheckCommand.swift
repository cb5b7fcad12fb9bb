import ArgumentParser
import Delivery
import FoundationEssentials
import Glibc
import InotifyWatcher
import RestoreSteps

/// `dropbox-agent check`: everything the agent needs, checked before it is needed.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract:
            "Check configuration, directories, filesystem type (inotify or polling), inotify limits, CASA, archive store and SMTP."
    )

    @Option(name: .long, help: "Configuration file (JSON). Default: built-in defaults.")
    var config: String?

    @Option(name: .long, help: "The spool directory (overrides the configuration).")
    var spool: String?

    @Flag(
        name: .long,
        help:
            "Also check the Slurm cluster of execution.slurm: the directories jobs need exist and are writable, and a tiny probe job on a node sees them."
    )
    var cluster = false

    func run() async throws {
        var report = CheckReport()
        let c: AgentConfiguration
        do {
            c = try SpoolOptions.parse(
                (config.map { ["--config", $0] } ?? []) + (spool.map { ["--spool", $0] } ?? [])
            ).load()
            report.ok(
                "configuration",
                config.map { "\($0) is valid" }
                    ?? "built-in defaults (data directory \(AgentConfiguration.defaultDataDirectory()))")
        } catch {
            report.fail("configuration", "\(error)")
            report.print()
            throw ExitCode(1)
        }
        checkDirectories(c, &report)
        checkFilesystem(c, &report)
        checkInotifyLimits(&report)
        checkCatalogue(c, &report)
        await checkStore(c, &report)
        await checkSources(c, &report)
        await checkCASA(c, &report)
        await checkMail(c, &report)
        checkExecution(c, &report)
        if cluster { await checkCluster(c, &report) }
        report.print()
        if report.failed { throw ExitCode(1) }
    }

    private func checkDirectories(_ c: AgentConfiguration, _ r: inout CheckReport) {
        let dirs: [(String, String)] = [
            ("data directory", c.dataDirectory), ("spool", c.spool.directory!),
            ("work directory", c.agent.workDirectory!),
            ("restore directory", c.agent.restoreDirectory!), ("download area", c.delivery.directory!),
        ]
        for (label, path) in dirs {
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                let probe = path + "/.dropbox-agent-check-\(getpid())"
                guard FileManager.default.createFile(atPath: probe, contents: Data()) else {
                    throw CocoaError(.fileWriteNoPermission)
                }
                try FileManager.default.removeItem(atPath: probe)
                r.ok(label, "\(path) writable")
            } catch {
                r.fail(label, "\(path) is not writable: \(ErrorText.describe(error))")
            }
        }
        var a = stat()
        var b = stat()
        if stat(c.spool.directory!, &a) == 0, stat(c.agent.workDirectory!, &b) == 0 {
            if a.st_dev == b.st_dev {
                r.ok("claims", "work directory on the spool's filesystem (atomic rename)")
            } else {
                r.fail("claims", "\(c.agent.workDirectory!) is not on the spool's filesystem; claims need rename(2)")
            }
        }
    }

    private func checkFilesystem(_ c: AgentConfiguration, _ r: inout CheckReport) {
        do {
            let fs = try FilesystemInfo.of(path: c.spool.directory!)
            let mode =
                c.spool.watchMode == .automatic
                ? (fs.inotifyReliable ? "inotify" : "polling") : c.spool.watchMode.rawValue
            r.ok(
                "filesystem",
                "spool on \(fs.typeName): \(mode) (rescan every \(c.spool.rescanIntervalSeconds) s"
                    + (mode == "polling" ? ", poll every \(c.spool.pollIntervalSeconds) s)" : ")"))
        } catch {
            r.fail("filesystem", "\(error)")
        }
    }

    private func checkInotifyLimits(_ r: inout CheckReport) {
        func read(_ name: String) -> Int? {
            (try? String(contentsOfFile: "/proc/sys/fs/inotify/" + name, encoding: .utf8)).flatMap {
                Int($0.trimmingWhitespaceAndNewlines())
            }
        }
        guard let instances = read("max_user_instances"), let watches = read("max_user_watches"),
            let queue = read("max_queued_events")
        else {
            r.warn("inotify", "limits unreadable; the agent falls back to polling if inotify fails")
            return
        }
        let detail =
            "max_user_instances \(instances), max_user_watches \(watches), max_queued_events \(queue) (the agent needs 1 instance and 1 watch; overflow is recovered by rescanning)"
        if instances < 1 || watches < 1 { r.fail("inotify", detail) } else { r.ok("inotify", detail) }
    }

    private func checkCatalogue(_ c: AgentConfiguration, _ r: inout CheckReport) {
        do {
            let n = try SQLiteCatalogue(path: c.catalogue.sqlite!).mouses().count
            if n == 0 {
                r.warn("catalogue", "\(c.catalogue.sqlite!) holds no MOUS yet (dropbox-agent catalog import FILE)")
            } else {
                r.ok("catalogue", "\(c.catalogue.sqlite!): \(n) MOUS")
            }
        } catch {
            r.fail("catalogue", "\(c.catalogue.sqlite!): \(error)")
        }
    }

    /// The NGAS store: a real `GET <url>/STATUS` with the configured login (`archive.username` and
    /// `archive.passwordFile`), so a wrong password or a store that wants a login fails here, not at the first
    /// restore. The local directory store: readable.
    private func checkStore(_ c: AgentConfiguration, _ r: inout CheckReport) async {
        if let url = c.archive.url {
            let headers: [String: String]
            do { headers = try ProductionExecutor.storeLogin(c) } catch {
                r.fail("archive store", "\(error)")
                return
            }
            let store = HTTPArchiveStore(baseURL: url, headers: headers, options: Self.checkOptions(c))
            let login = c.archive.username.map { "login as \($0) accepted" } ?? "no login configured"
            do {
                let answer = try await store.serverStatus()
                r.ok(
                    "archive store",
                    "\(store.baseURL): STATUS answered \(answer.status ?? "SUCCESS")\(answer.hostId.map { " from \($0)" } ?? ""); \(login)"
                )
            } catch {
                r.fail("archive store", "\(store.baseURL): \(error.message)")
            }
        } else {
            let dir = c.archive.localDirectory!
            let n = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).count
            if FileManager.default.isReadableFile(atPath: dir) {
                r.ok("archive store", "local directory \(dir) (\(n) files)")
            } else {
                r.fail("archive store", "local directory \(dir) is not readable")
            }
        }
    }

    /// The configured transfer options, with one attempt: a check reports what the server says now.
    private static func checkOptions(_ c: AgentConfiguration) -> HTTPStoreOptions {
        var options = ProductionExecutor.httpOptions(c)
        options.maxAttempts = 1
        options.connectTimeout = .seconds(10)
        options.documentTimeout = .seconds(30)
        return options
    }

    /// Package roots readable; the ALMA archive answering a real request (its TAP service's VOSI availability),
    /// with the token of `sources.almaArchive.tokenFile` when one is configured, so an expired or wrong token is
    /// reported here.
    private func checkSources(_ c: AgentConfiguration, _ r: inout CheckReport) async {
        let sources = c.sources
        for root in sources.packageRoots ?? [] {
            if FileManager.default.isReadableFile(atPath: root) {
                r.ok("package root", "\(root) readable")
            } else {
                let message = "\(root) does not exist or is not readable"
                if sources.default == .package {
                    r.fail("package root", message)
                } else {
                    r.warn("package root", message + " (requests naming packages there will fail)")
                }
            }
        }
        for prefix in sources.packageURLs { r.ok("package URLs", "requests may name packages under \(prefix)") }
        if let url = sources.almaArchive.url {
            var token: String?
            if let file = sources.almaArchive.tokenFile {
                guard let data = FileManager.default.contents(atPath: file) else {
                    r.fail("ALMA archive", "token file \(file) is not readable; proprietary data cannot be fetched")
                    return
                }
                token = String(decoding: data, as: UTF8.self)
            }
            let client = AlmaArchiveClient(baseURL: url, token: token, options: Self.checkOptions(c))
            if sources.almaArchive.tokenFile != nil && client.token == nil {
                r.fail("ALMA archive", "token file \(sources.almaArchive.tokenFile!) is empty")
                return
            }
            do {
                let answer = try await client.availability()
                let login = client.token == nil ? "no token configured (public data only)" : "token accepted"
                if answer.available {
                    r.ok(
                        "ALMA archive",
                        "\(client.availabilityURL): available\(answer.note.map { " (\($0))" } ?? ""); \(login)")
                } else {
                    r.fail(
                        "ALMA archive",
                        "\(client.availabilityURL): the service says it is not available\(answer.note.map { ": \($0)" } ?? "")"
                    )
                }
            } catch {
                r.fail(
                    "ALMA archive",
                    error.code == .archiveAccessDenied && client.token != nil
                        ? "the archive refused the token of \(sources.almaArchive.tokenFile!): \(error.message)"
                        : error.message)
            }
        } else if sources.default == .almaArchive {
            r.fail("ALMA archive", "sources.default is almaArchive but sources.almaArchive.url is not set")
        }
    }

    private func checkCASA(_ c: AgentConfiguration, _ r: inout CheckReport) async {
        let installations = ProductionExecutor.casaInstallations(c)
        r.ok(
            "casa policy",
            "casa.versionPolicy \(c.casa.versionPolicy.rawValue); casa.installOnDemand \(c.casa.installOnDemand ? "on (\(c.casaVenvsDirectory))" : "off")"
        )
        for inst in installations {
            switch inst.kind {
            case .modular:
                guard let programDir = inst.programDir ?? c.casa.programDirectory else {
                    r.fail("casa \(inst.name)", "restore_mous.py not found; set casa.programDirectory")
                    continue
                }
                let status = await CASAEnvironment.check(venv: inst.home, programDir: programDir)
                if status.ok {
                    r.ok(
                        "casa \(inst.name)",
                        "modular CASA \(status.version ?? "?") at \(inst.home): casatools \(status.casatools ?? "?")")
                } else {
                    let message =
                        "modular CASA at \(inst.home): \(status.problems.joined(separator: "; ")) — run `dropbox-agent casa install`"
                    if inst.name == c.casa.defaultInstallation {
                        r.fail("casa \(inst.name)", message)
                    } else {
                        r.warn("casa \(inst.name)", message)
                    }
                }
            case .pipeline:
                let missing = [inst.casaExecutable, inst.runpipeline].filter {
                    !FileManager.default.isExecutableFile(atPath: $0) && !FileManager.default.fileExists(atPath: $0)
                }
                if missing.isEmpty {
                    r.ok("casa \(inst.name)", "pipeline CASA \(inst.version) at \(inst.home)")
                } else {
                    r.fail("casa \(inst.name)", "missing: \(missing.joined(separator: ", "))")
                }
            }
        }
    }

    /// Logs in as a send would (EHLO, STARTTLS, AUTH), then NOOP and QUIT: a wrong password fails here, not at the
    /// first mail. Nothing is sent.
    private func checkMail(_ c: AgentConfiguration, _ r: inout CheckReport) async {
        if let smtp = c.notifications.smtp {
            do {
                let from = c.notifications.from ?? "dropbox-agent@localhost.localdomain"
                let mailer = try SMTPMailer(configuration: try MailNotifier.smtpConfiguration(smtp, from: from))
                let verified = try await mailer.verifyLogin()
                r.ok("smtp", "\(smtp.url): login accepted (\(verified)); nothing sent")
            } catch {
                r.fail("smtp", "\(error)")
            }
        } else {
            r.ok("smtp", "no SMTP server configured: messages are written to \(c.notifications.outboxDirectory!)")
        }
    }
}

/// Lines of ok / warning / failure.
struct CheckReport {
    private var lines: [String] = []
    private(set) var failed = false
    mutating func ok(_ what: String, _ detail: String) { lines.append("ok    \(what): \(detail)") }
    mutating func warn(_ what: String, _ detail: String) { lines.append("warn  \(what): \(detail)") }
    mutating func fail(_ what: String, _ detail: String) {
        failed = true
        lines.append("FAIL  \(what): \(detail)")
    }
    func print() { for l in lines { Swift.print(l) } }
}

/// Whether a TCP connection to a URL's host and port can be opened (within 5 s).
enum TCPProbe {
    enum Outcome {
        case success
        case failure(String)
    }
    static func check(url: String) -> Outcome {
        guard let u = URL(string: url), let host = u.host else { return .failure("not a URL") }
        let defaults = ["http": 80, "https": 443, "smtp": 25, "smtps": 465]
        let port = u.port ?? defaults[u.scheme ?? ""] ?? 80
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
            return .failure("cannot resolve \(host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
        guard fd >= 0 else { return .failure("socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) == 0 else {
            return .failure("cannot connect to \(host):\(port): \(String(cString: strerror(errno)))")
        }
        return .success
    }
}
