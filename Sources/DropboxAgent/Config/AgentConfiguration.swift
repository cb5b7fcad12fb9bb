import FoundationEssentials
import Glibc
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
    var execution: ExecutionConfiguration

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataDirectory, spool, agent, catalogue, archive, casa, delivery, notifications, logging, sources
        case metrics, dashboard, execution
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
        execution = ExecutionConfiguration()
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
        execution = try c.value(.execution, default: ExecutionConfiguration())
    }

    /// `$DROPBOX_AGENT_DATA`, else `/var/lib/dropbox-agent` for root, else `$XDG_DATA_HOME/dropbox-agent`
    /// (`~/.local/share/dropbox-agent`).
    static func defaultDataDirectory() -> String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["DROPBOX_AGENT_DATA"], !dir.isEmpty { return absolutePath(dir) }
        if getuid() == 0 { return "/var/lib/dropbox-agent" }
        if let xdg = env["XDG_DATA_HOME"], !xdg.isEmpty { return xdg + "/dropbox-agent" }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.local/share/dropbox-agent"
    }

    /// Loads `path`, or the defaults when `path` is nil; relative paths in the file are taken relative to it.
    static func load(path: String?) throws -> AgentConfiguration {
        guard let path else {
            return AgentConfiguration().resolved(relativeTo: FileManager.default.currentDirectoryPath)
        }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ConfigurationError(
                path: path, message: "cannot read the configuration file: \(ErrorText.describe(error))")
        }
        do {
            let json = try parseSyntax([UInt8](data))
            let config = try JSONDecoder().decode(AgentConfiguration.self, from: data)
            try checkNestedKeys(json)
            try config.checkChoices()
            return config.resolved(
                relativeTo: URL(fileURLWithPath: absolutePath(path)).deletingLastPathComponent().path)
        } catch let error as ConfigurationError {
            throw ConfigurationError(path: "\(path) \(error.path)", message: error.message)
        } catch let DecodingError.typeMismatch(type, context), let DecodingError.valueNotFound(type, context) {
            throw ConfigurationError(
                path: "\(path) $." + context.codingPath.map(\.stringValue).joined(separator: "."),
                message: "expected \(type): \(context.debugDescription)")
        } catch let DecodingError.dataCorrupted(context) {
            throw ConfigurationError(
                path: "\(path) $." + context.codingPath.map(\.stringValue).joined(separator: "."),
                message: context.debugDescription)
        } catch {
            throw ConfigurationError(path: path, message: "\(error)")
        }
    }

    /// Makes every path absolute: relative ones are taken relative to `base`; unset ones get their defaults
    /// under the data directory.
    func resolved(relativeTo base: String) -> AgentConfiguration {
        func abs(_ p: String) -> String { p.hasPrefix("/") ? p : PathString.appending(base, p) }
        var c = self
        c.dataDirectory = abs(dataDirectory)
        let data = c.dataDirectory
        c.spool.directory = abs(spool.directory ?? data + "/spool")
        c.agent.workDirectory = abs(agent.workDirectory ?? c.spool.directory! + "/.dropbox-agent")
        c.agent.restoreDirectory = abs(agent.restoreDirectory ?? data + "/restores")
        c.agent.journal = abs(agent.journal ?? data + "/journal.sqlite")
        c.catalogue.sqlite = abs(catalogue.sqlite ?? data + "/catalogue.sqlite")
        c.archive.localDirectory = abs(archive.localDirectory ?? data + "/archive")
        c.archive.passwordFile = archive.passwordFile.map(abs)
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
        let selfExe =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let exe = URL(fileURLWithPath: selfExe).resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        let installed = dir.deletingLastPathComponent().appendingPathComponent("share/dropbox-agent/casa")
        if FileManager.default.fileExists(atPath: installed.appendingPathComponent("restore_mous.py").path) {
            return installed.path
        }
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("casa")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("restore_mous.py").path) {
                return candidate.path
            }
            dir = dir.deletingLastPathComponent()
        }
        return nil
    }
}

func absolutePath(_ path: String) -> String {
    path.hasPrefix("/") ? path : PathString.appending(FileManager.default.currentDirectoryPath, path)
}
