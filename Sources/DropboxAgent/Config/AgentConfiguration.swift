import Foundation
import Delivery
import RestoreSteps

/// Everything the agent can be told, with a documented default for every key.
///
/// The file is JSON (`dropbox-agent run --config FILE`); every key is optional and unknown keys are errors.
/// Without a file the embedded defaults apply: spool, journal, catalogue, local archive store, cache,
/// working areas, download area and outbox all live under the data directory.
struct AgentConfiguration: Codable, Sendable {
    /// Where the agent keeps its state (`DROPBOX_AGENT_DATA` overrides the default).
    var dataDirectory: String
    var spool: SpoolSettings
    var agent: AgentSettings
    var catalogue: CatalogueSettings
    var archive: ArchiveSettings
    var casa: CASASettings
    var delivery: DeliverySettings
    var notifications: NotificationSettings
    var logging: LoggingSettings
    var sources: SourcesSettings
    var metrics: MetricsSettings
    var dashboard: DashboardSettings

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataDirectory, spool, agent, catalogue, archive, casa, delivery, notifications, logging, sources
        case metrics, dashboard
    }

    /// The built-in defaults for a data directory.
    init(dataDirectory: String = AgentConfiguration.defaultDataDirectory()) {
        self.dataDirectory = dataDirectory
        spool = SpoolSettings()
        agent = AgentSettings()
        catalogue = CatalogueSettings()
        archive = ArchiveSettings()
        casa = CASASettings()
        delivery = DeliverySettings()
        notifications = NotificationSettings()
        logging = LoggingSettings()
        sources = SourcesSettings()
        metrics = MetricsSettings()
        dashboard = DashboardSettings()
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataDirectory = try c.value(.dataDirectory, default: AgentConfiguration.defaultDataDirectory())
        spool = try c.value(.spool, default: SpoolSettings())
        agent = try c.value(.agent, default: AgentSettings())
        catalogue = try c.value(.catalogue, default: CatalogueSettings())
        archive = try c.value(.archive, default: ArchiveSettings())
        casa = try c.value(.casa, default: CASASettings())
        delivery = try c.value(.delivery, default: DeliverySettings())
        notifications = try c.value(.notifications, default: NotificationSettings())
        logging = try c.value(.logging, default: LoggingSettings())
        sources = try c.value(.sources, default: SourcesSettings())
        metrics = try c.value(.metrics, default: MetricsSettings())
        dashboard = try c.value(.dashboard, default: DashboardSettings())
    }

    /// `$DROPBOX_AGENT_DATA`, else `/var/lib/dropbox-agent` for root, else `$XDG_DATA_HOME/dropbox-agent`
    /// (`~/.local/share/dropbox-agent`).
    static func defaultDataDirectory() -> String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["DROPBOX_AGENT_DATA"], !dir.isEmpty { return absolutePath(dir) }
        if getuid() == 0 { return "/var/lib/dropbox-agent" }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/dropbox-agent" }
        return NSHomeDirectory() + "/.local/share/dropbox-agent"
    }

    /// Loads `path`, or the defaults when `path` is nil; relative paths in the file are taken relative to it.
    static func load(path: String?) throws -> AgentConfiguration {
        guard let path else { return AgentConfiguration().resolved(relativeTo: FileManager.default.currentDirectoryPath) }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigurationError(path: path, message: "cannot read the configuration file: \(error.localizedDescription)")
        }
        do {
            let json = try parseSyntax([UInt8](data))
            let config = try JSONDecoder().decode(AgentConfiguration.self, from: data)
            try checkNestedKeys(json)
            try config.checkChoices()
            return config.resolved(relativeTo: URL(fileURLWithPath: absolutePath(path)).deletingLastPathComponent().path)
        } catch let error as ConfigurationError {
            throw ConfigurationError(path: "\(path) \(error.path)", message: error.message)
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            throw ConfigurationError(path: "\(path) $." + context.codingPath.map(\.stringValue).joined(separator: "."), message: "expected \(type): \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigurationError(path: "\(path) $." + context.codingPath.map(\.stringValue).joined(separator: "."), message: context.debugDescription)
        } catch {
            throw ConfigurationError(path: path, message: "\(error)")
        }
    }

    /// Makes every path absolute: relative ones are taken relative to `base`; unset ones get their defaults
    /// under the data directory.
    func resolved(relativeTo base: String) -> AgentConfiguration {
        func abs(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        var c = self
        c.dataDirectory = abs(dataDirectory)
        let data = c.dataDirectory
        c.spool.directory = abs(spool.directory ?? data + "/spool")
        c.agent.workDirectory = abs(agent.workDirectory ?? c.spool.directory! + "/.dropbox-agent")
        c.agent.restoreDirectory = abs(agent.restoreDirectory ?? data + "/restores")
        c.agent.journal = abs(agent.journal ?? data + "/journal.sqlite")
        c.catalogue.sqlite = abs(catalogue.sqlite ?? data + "/catalogue.sqlite")
        c.archive.localDirectory = abs(archive.localDirectory ?? data + "/archive")
        c.archive.cacheDirectory = abs(archive.cacheDirectory ?? data + "/cache")
        c.casa.modularVenv = abs(casa.modularVenv ?? data + "/casa-venv")
        c.casa.programDirectory = casa.programDirectory.map(abs) ?? AgentConfiguration.locateCASAProgramDirectory()
        c.delivery.directory = abs(delivery.directory ?? data + "/downloads")
        c.notifications.outboxDirectory = abs(notifications.outboxDirectory ?? data + "/outbox")
        c.sources.packageRoots = (sources.packageRoots ?? [data + "/packages"]).map(abs)
        c.sources.almaArchive.tokenFile = sources.almaArchive.tokenFile.map(abs)
        c.metrics.textfile = abs(metrics.textfile ?? data + "/metrics.prom")
        c.dashboard.file = abs(dashboard.file ?? data + "/www/index.html")
        c.rejectedDirectoryResolved()
        return c
    }

    private mutating func rejectedDirectoryResolved() {
        if spool.rejectedDirectory == nil { spool.rejectedDirectory = agent.workDirectory! + "/rejected" }
    }

    /// Modular venvs of other CASA versions, one per version: `<data>/casa-venvs/<version>`.
    var casaVenvsDirectory: String { dataDirectory + "/casa-venvs" }

    /// The directory with `restore_mous.py` and `casaenv.py`: next to an installed binary
    /// (`<prefix>/share/dropbox-agent/casa`), or the repository's `casa/` for a development build.
    static func locateCASAProgramDirectory() -> String? {
        // /proc/self/exe, not argv[0]: started from $PATH, argv[0] is a bare name.
        let selfExe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let exe = URL(fileURLWithPath: selfExe).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        let installed = dir.deletingLastPathComponent().appendingPathComponent("share/dropbox-agent/casa")
        if FileManager.default.fileExists(atPath: installed.appendingPathComponent("restore_mous.py").path) { return installed.path }
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("casa")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("restore_mous.py").path) { return candidate.path }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(path)
}

/// How the spool is watched: `automatic` lets statfs decide (polling on NFS, CIFS, FUSE, overlayfs).
enum SpoolWatchMode: String, Codable, Sendable { case automatic, inotify, polling }

/// `spool`: where requests are dropped and how they are watched.
struct SpoolSettings: Codable, Sendable {
    /// The spool directory (default `<data>/spool`; `run --spool` overrides).
    var directory: String?
    /// `automatic` (inotify unless statfs says NFS/CIFS/FUSE/overlay), `inotify` or `polling`.
    var watchMode: SpoolWatchMode = .automatic
    /// Full rescan period even when inotify works.
    var rescanIntervalSeconds: Double = 30
    /// Rescan period in polling mode.
    var pollIntervalSeconds: Double = 2
    /// A file must keep size, mtime, ctime and inode this long before it is taken.
    var settleSeconds: Double = 2
    /// A file that is still not one complete JSON object after this long is rejected.
    var incompleteTimeoutSeconds: Double = 600
    /// Largest accepted request.
    var maxRequestBytes: Int = 65536
    /// Owners allowed to drop requests: user names or numeric uids; `"*"` allows anyone. Default: the
    /// agent's own user and root.
    var allowedOwners: [String]?
    /// Where rejected requests are kept with a reason file (default `<workDirectory>/rejected`).
    var rejectedDirectory: String?
    /// Permissions of status files (octal string), so droppers can read them.
    var statusFileMode: String = "0644"

    enum CodingKeys: String, CodingKey, CaseIterable {
        case directory, watchMode, rescanIntervalSeconds, pollIntervalSeconds, settleSeconds, incompleteTimeoutSeconds
        case maxRequestBytes, allowedOwners, rejectedDirectory, statusFileMode
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SpoolSettings()
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        watchMode = try c.value(.watchMode, default: d.watchMode)
        rescanIntervalSeconds = try c.value(.rescanIntervalSeconds, default: d.rescanIntervalSeconds)
        pollIntervalSeconds = try c.value(.pollIntervalSeconds, default: d.pollIntervalSeconds)
        settleSeconds = try c.value(.settleSeconds, default: d.settleSeconds)
        incompleteTimeoutSeconds = try c.value(.incompleteTimeoutSeconds, default: d.incompleteTimeoutSeconds)
        maxRequestBytes = try c.value(.maxRequestBytes, default: d.maxRequestBytes)
        allowedOwners = try c.decodeIfPresent([String].self, forKey: .allowedOwners)
        rejectedDirectory = try c.decodeIfPresent(String.self, forKey: .rejectedDirectory)
        statusFileMode = try c.value(.statusFileMode, default: d.statusFileMode)
    }
}

/// `agent`: concurrency, leases, journal, working areas.
struct AgentSettings: Codable, Sendable {
    /// Claimed requests and leases; must be on the spool's filesystem (default `<spool>/.dropbox-agent`).
    var workDirectory: String?
    /// Per-request working areas (default `<data>/restores`).
    var restoreDirectory: String?
    /// The SQLite journal (default `<data>/journal.sqlite`); keep it on a local filesystem.
    var journal: String?
    /// How many restores run at once; the rest stay queued in the spool, first come first served.
    var maxConcurrentRestores: Int = 1
    /// At most this many restores of one dropper (the request file's owner) at once, so one busy dropper cannot
    /// take every slot; 0 means no per-dropper bound.
    var maxConcurrentPerDropper: Int = 0
    /// A claimed request whose lease is not renewed for this long is taken over by another agent.
    var leaseSeconds: Double = 300
    /// How many times a request is started (first run plus takeovers) before it fails for good.
    var maxAttempts: Int = 3
    /// The same request dropped again within this window of a live or succeeded one links to it.
    var resubmitWindowSeconds: Double = 86400
    /// On SIGTERM, how long the running step may take to finish before it is interrupted.
    var shutdownGraceSeconds: Double = 20
    /// Finished job records and status files older than this many days are removed (0 keeps them forever).
    var retentionDays: Double = 7
    /// Free space needed in the restore directory before the raw fetch, as a multiple of the raw ASDM bytes
    /// (measured on the fixture; 0 disables the check).
    var diskSpaceFactor: Double = DiskSpaceCheck.defaultFactor

    enum CodingKeys: String, CodingKey, CaseIterable {
        case workDirectory, restoreDirectory, journal, maxConcurrentRestores, maxConcurrentPerDropper, leaseSeconds, maxAttempts
        case resubmitWindowSeconds, shutdownGraceSeconds, retentionDays, diskSpaceFactor
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AgentSettings()
        workDirectory = try c.decodeIfPresent(String.self, forKey: .workDirectory)
        restoreDirectory = try c.decodeIfPresent(String.self, forKey: .restoreDirectory)
        journal = try c.decodeIfPresent(String.self, forKey: .journal)
        maxConcurrentRestores = try c.value(.maxConcurrentRestores, default: d.maxConcurrentRestores)
        maxConcurrentPerDropper = try c.value(.maxConcurrentPerDropper, default: d.maxConcurrentPerDropper)
        leaseSeconds = try c.value(.leaseSeconds, default: d.leaseSeconds)
        maxAttempts = try c.value(.maxAttempts, default: d.maxAttempts)
        resubmitWindowSeconds = try c.value(.resubmitWindowSeconds, default: d.resubmitWindowSeconds)
        shutdownGraceSeconds = try c.value(.shutdownGraceSeconds, default: d.shutdownGraceSeconds)
        retentionDays = try c.value(.retentionDays, default: d.retentionDays)
        diskSpaceFactor = try c.value(.diskSpaceFactor, default: d.diskSpaceFactor)
        if diskSpaceFactor < 0 || !diskSpaceFactor.isFinite {
            throw ConfigurationError(path: "$.agent.diskSpaceFactor", message: "must be a number ≥ 0 (0 disables the check), not \(diskSpaceFactor)")
        }
    }
}

/// `catalogue`: the metadata source.
struct CatalogueSettings: Codable, Sendable {
    /// The embedded SQLite catalogue (default `<data>/catalogue.sqlite`).
    var sqlite: String?
    /// Restore MOUSes whose release date is in the future.
    var allowProprietary: Bool = false

    enum CodingKeys: String, CodingKey, CaseIterable { case sqlite, allowProprietary }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sqlite = try c.decodeIfPresent(String.self, forKey: .sqlite)
        allowProprietary = try c.value(.allowProprietary, default: false)
    }
}

/// `archive`: where raw data and products come from.
struct ArchiveSettings: Codable, Sendable {
    /// NGAS-compatible base URL (`http://host:7777`); when null, the local directory store is used.
    var url: String?
    /// The embedded local store: files flat under their NGAS file id (default `<data>/archive`).
    var localDirectory: String?
    /// Files fetched at once.
    var parallelTransfers: Int = 2
    /// Attempts per file (with backoff; `Retry-After` honoured).
    var maxAttempts: Int = 5
    /// A transfer slower than `lowSpeedBytesPerSecond` for `lowSpeedSeconds` is aborted and retried.
    var lowSpeedBytesPerSecond: Int = 1024
    var lowSpeedSeconds: Double = 60
    /// A request failing for a transient reason (archive 5xx or unreachable after `maxAttempts`, delivery
    /// area unavailable) is retried later with backoff instead of failing, for at most this many seconds after
    /// its first transient failure.
    var retryHorizonSeconds: Double = 14400
    /// The first of those retries comes after this many seconds; each later one waits twice as long (at most
    /// 15 minutes).
    var retryInitialSeconds: Double = 30
    /// Shared cache of fetched files (default `<data>/cache`).
    var cacheDirectory: String?
    /// Cache size bound; least recently used files are evicted first, never files in use.
    var cacheMaxBytes: Int64 = 50 * 1024 * 1024 * 1024
    /// Raw data source: `archive` (ASDM tarballs from the store) or `command` (an asdmExportLight-compatible
    /// program; see `rawdataCommand`).
    var rawdataSource: String = "archive"
    /// argv of the export program; an argument `{eb}` is replaced by the EB uid and `{dir}` by the rawdata
    /// directory. Run without a shell.
    var rawdataCommand: [String]?
    /// Bounds on every archive the agent unpacks (raw data, products, packages, caltables and flag versions).
    var limits = ArchiveLimitSettings()

    enum CodingKeys: String, CodingKey, CaseIterable {
        case url, localDirectory, parallelTransfers, maxAttempts, lowSpeedBytesPerSecond, lowSpeedSeconds
        case retryHorizonSeconds, retryInitialSeconds
        case cacheDirectory, cacheMaxBytes, rawdataSource, rawdataCommand, limits
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ArchiveSettings()
        url = try c.decodeIfPresent(String.self, forKey: .url)
        localDirectory = try c.decodeIfPresent(String.self, forKey: .localDirectory)
        parallelTransfers = try c.value(.parallelTransfers, default: d.parallelTransfers)
        maxAttempts = try c.value(.maxAttempts, default: d.maxAttempts)
        lowSpeedBytesPerSecond = try c.value(.lowSpeedBytesPerSecond, default: d.lowSpeedBytesPerSecond)
        lowSpeedSeconds = try c.value(.lowSpeedSeconds, default: d.lowSpeedSeconds)
        retryHorizonSeconds = try c.value(.retryHorizonSeconds, default: d.retryHorizonSeconds)
        retryInitialSeconds = try c.value(.retryInitialSeconds, default: d.retryInitialSeconds)
        cacheDirectory = try c.decodeIfPresent(String.self, forKey: .cacheDirectory)
        cacheMaxBytes = try c.value(.cacheMaxBytes, default: d.cacheMaxBytes)
        rawdataSource = try c.value(.rawdataSource, default: d.rawdataSource)
        rawdataCommand = try c.decodeIfPresent([String].self, forKey: .rawdataCommand)
        limits = try c.value(.limits, default: d.limits)
    }
}

/// `archive.limits`: tar-bomb bounds, the ``ArchiveLimits`` of every extraction. Where the expected expanded
/// size of an archive is known (the catalogue's or a package's file sizes), total and per-file bounds are
/// tightened to twice that plus 64 MiB (``ArchiveLimits/expecting(_:)``), never loosened.
struct ArchiveLimitSettings: Codable, Sendable {
    /// Entries (files, directories, links) per archive.
    var maxEntries: Int = 100_000
    /// Sum of the sizes of all entries of one archive.
    var maxTotalBytes: Int64 = 64 << 30
    /// Size of any one file.
    var maxFileBytes: Int64 = 64 << 30
    /// Decompressed bytes at most this many times the archive file's size (0 disables the ratio check) ...
    var maxExpansionRatio: Double = 200
    /// ... beyond this many bytes, always allowed.
    var ratioAllowanceBytes: Int64 = 64 << 20

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxEntries, maxTotalBytes, maxFileBytes, maxExpansionRatio, ratioAllowanceBytes
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ArchiveLimitSettings()
        maxEntries = try c.value(.maxEntries, default: d.maxEntries)
        maxTotalBytes = try c.value(.maxTotalBytes, default: d.maxTotalBytes)
        maxFileBytes = try c.value(.maxFileBytes, default: d.maxFileBytes)
        maxExpansionRatio = try c.value(.maxExpansionRatio, default: d.maxExpansionRatio)
        ratioAllowanceBytes = try c.value(.ratioAllowanceBytes, default: d.ratioAllowanceBytes)
        func positive(_ ok: Bool, _ key: CodingKeys, _ what: String) throws {
            guard ok else { throw ConfigurationError(path: "$.archive.limits.\(key.stringValue)", message: what) }
        }
        try positive(maxEntries > 0, .maxEntries, "must be a positive number of entries")
        try positive(maxTotalBytes > 0, .maxTotalBytes, "must be a positive number of bytes")
        try positive(maxFileBytes > 0, .maxFileBytes, "must be a positive number of bytes")
        try positive(maxExpansionRatio == 0 || maxExpansionRatio >= 1, .maxExpansionRatio, "must be 0 (no ratio check) or at least 1")
        try positive(ratioAllowanceBytes >= 0, .ratioAllowanceBytes, "must not be negative")
    }

    /// The ``ArchiveLimits`` these settings describe.
    var archiveLimits: ArchiveLimits {
        ArchiveLimits(
            maxEntries: maxEntries, maxTotalBytes: maxTotalBytes, maxEntryBytes: maxFileBytes,
            maxExpansionRatio: maxExpansionRatio, ratioAllowanceBytes: ratioAllowanceBytes)
    }
}

/// `casa`: the installations a request may choose from, and the embedded modular one.
struct CASASettings: Codable, Sendable {
    /// Name of the installation used when the request does not choose (default `modular`).
    var defaultInstallation: String = "modular"
    /// Monolithic CASA + pipeline installations (kind `pipeline`) and extra modular ones: objects with
    /// `name`, `kind` (`pipeline`|`modular`), `home` (casaHome, or the venv), `version`, and optionally
    /// `runpipeline`, `scriptDir`, `programDir`, `xvfbRun`, `useXvfb`, `path`, `extraEnvironment`.
    var installations: [CASAInstallation] = []
    /// The embedded modular installation's virtual environment (default `<data>/casa-venv`).
    var modularVenv: String?
    /// Directory of `restore_mous.py`/`casaenv.py` (default: found next to the binary).
    var programDirectory: String?
    /// A CASA run longer than this is killed (whole process group) and the restore fails.
    var timeoutSeconds: Double = 48 * 3600
    /// Between SIGTERM and SIGKILL of the CASA process group.
    var killGraceSeconds: Double = 10
    /// Execution blocks the modular runner restores at once, each in its own CASA process (`restore_mous.py
    /// --parallel`); at least 1. Default (nil): half the cores, at least 1.
    var parallelExecBlocks: Int?
    /// Which CASA may restore tables made by the manifest's `casaversion`: `exact`, `sameMinor`, `newerAllowed`
    /// (default), `any`.
    var versionPolicy: CASAVersionPolicy = .default
    /// Create a modular venv of the manifest's CASA version on first use when none is installed, cached per
    /// version under `<data>/casa-venvs/<version>` (only versions PyPI has wheels of for this Python).
    var installOnDemand = false

    enum CodingKeys: String, CodingKey, CaseIterable {
        case defaultInstallation, installations, modularVenv, programDirectory, timeoutSeconds, killGraceSeconds
        case parallelExecBlocks, versionPolicy, installOnDemand
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CASASettings()
        defaultInstallation = try c.value(.defaultInstallation, default: d.defaultInstallation)
        installations = try c.value(.installations, default: [])
        modularVenv = try c.decodeIfPresent(String.self, forKey: .modularVenv)
        programDirectory = try c.decodeIfPresent(String.self, forKey: .programDirectory)
        timeoutSeconds = try c.value(.timeoutSeconds, default: d.timeoutSeconds)
        killGraceSeconds = try c.value(.killGraceSeconds, default: d.killGraceSeconds)
        parallelExecBlocks = try c.decodeIfPresent(Int.self, forKey: .parallelExecBlocks)
        if let n = parallelExecBlocks, n < 1 {
            throw ConfigurationError(path: "$.casa.parallelExecBlocks", message: "must be at least 1, not \(n)")
        }
        if let text = try c.decodeIfPresent(String.self, forKey: .versionPolicy) {
            guard let policy = CASAVersionPolicy(rawValue: text) else {
                throw ConfigurationError(
                    path: "$.casa.versionPolicy",
                    message: "must be one of \(CASAVersionPolicy.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
            }
            versionPolicy = policy
        }
        installOnDemand = try c.value(.installOnDemand, default: d.installOnDemand)
    }
}

/// `delivery`: where measurement sets go.
struct DeliverySettings: Codable, Sendable {
    /// The download area (default `<data>/downloads`); one directory per request.
    var directory: String?
    /// URL under which the download area is served (`https://host/downloads`); default: `file://` URLs.
    var baseURL: String?
    /// `ms` (directory) or `tar`, unless the request says otherwise.
    var defaultFormat: RestoreRequest.DeliveryFormat = .ms
    /// When working areas are removed: `never`, `onSuccess` (default: failures are kept for inspection), `always`.
    var cleanWorkingArea: String = "onSuccess"
    /// Numeric group id or name for delivered files; default: the agent's group.
    var group: String?
    /// Mode of a delivery's directories (octal string): default 0755, so a web server's own user can serve them.
    /// The download area itself is created 0711 (reachable, not listable), and every delivery has a random name.
    var directoryMode: String = "0755"
    /// Mode of delivered files (octal string), default 0644.
    var fileMode: String = "0644"
    /// Days a delivery stays in the download area before the agent removes it (default 14; 0 keeps it for ever).
    var retentionDays: Double = 14
    /// Bound of the restore cache that later requests for the same inputs reuse (bytes; 0 disables reuse).
    var reuseMaxBytes: Int64 = 100 * (1 << 30)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case directory, baseURL, defaultFormat, cleanWorkingArea, group, directoryMode, fileMode, retentionDays, reuseMaxBytes
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DeliverySettings()
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        defaultFormat = try c.value(.defaultFormat, default: d.defaultFormat)
        cleanWorkingArea = try c.value(.cleanWorkingArea, default: d.cleanWorkingArea)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        directoryMode = try c.value(.directoryMode, default: d.directoryMode)
        fileMode = try c.value(.fileMode, default: d.fileMode)
        retentionDays = try c.value(.retentionDays, default: d.retentionDays)
        reuseMaxBytes = try c.value(.reuseMaxBytes, default: d.reuseMaxBytes)
    }

    /// `delivery.retentionDays` in seconds; nil: kept for ever.
    var retentionSeconds: Double? { retentionDays > 0 ? retentionDays * 86400 : nil }
}

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

/// `logging`.
struct LoggingSettings: Codable, Sendable {
    /// `trace`, `debug`, `info` (default), `notice`, `warning`, `error`.
    var level: String = "info"
    /// `json` (one object per line, default) or `text`.
    var format: String = "json"

    enum CodingKeys: String, CodingKey, CaseIterable { case level, format }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        level = try c.value(.level, default: "info")
        format = try c.value(.format, default: "json")
    }
}
