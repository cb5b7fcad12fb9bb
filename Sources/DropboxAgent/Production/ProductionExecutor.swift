import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// The real restore: the six steps of `RestoreSteps` with the site's services from the configuration.
struct ProductionExecutor: RestoreExecutor {
    let services: RestoreServices
    let cleanPolicy: String
    let logger: Logger
    /// Registers succeeded deliveries for removal after `delivery.retentionDays` (nil: kept for ever).
    let expiry: DeliveryExpiry?
    let spoolDirectory: String
    /// Restored measurement sets kept for reuse (`<data>/restore-cache`, `delivery.reuseMaxBytes`; nil: 0, no reuse).
    let restoreCache: RestoreCache?

    init(configuration c: AgentConfiguration, logger: Logger) throws {
        self.logger = logger
        cleanPolicy = c.delivery.cleanWorkingArea
        services = try Self.services(c)
        // Working areas are named after jobs (and so requests): the agent's only. The download area can be reached,
        // not listed: each delivery has a random name that only its status file and mail reveal.
        try PrivateDirectory.create(c.agent.restoreDirectory!, mode: 0o700)
        try PrivateDirectory.create(c.delivery.directory!, mode: 0o711)
        expiry = c.delivery.retentionSeconds == nil ? nil : Self.deliveryExpiry(c, logger: logger)
        spoolDirectory = c.spool.directory!
        restoreCache =
            c.delivery.reuseMaxBytes > 0
            ? RestoreCache(root: c.dataDirectory + "/restore-cache", maxBytes: c.delivery.reuseMaxBytes) : nil
    }

    /// The registry of deliveries to remove when they expire (`<data>/deliveries`).
    static func deliveryExpiry(_ c: AgentConfiguration, logger: Logger) -> DeliveryExpiry {
        DeliveryExpiry(
            directory: c.dataDirectory + "/deliveries", downloadDirectory: c.delivery.directory!,
            records: StatusRecords(configuration: c), logger: logger)
    }

    /// Builds the site's services from the configuration (also used by `validate --plan` and `check`).
    static func services(_ c: AgentConfiguration) throws -> RestoreServices {
        try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
        let catalogue = try SQLiteCatalogue(path: c.catalogue.sqlite!)
        let store: any ArchiveStore
        if let url = c.archive.url {
            store = HTTPArchiveStore(baseURL: url, headers: try storeLogin(c), options: httpOptions(c))
        } else {
            try FileManager.default.createDirectory(
                atPath: c.archive.localDirectory!, withIntermediateDirectories: true)
            store = LocalDirectoryStore(root: c.archive.localDirectory!)
        }
        try FileManager.default.createDirectory(atPath: c.archive.cacheDirectory!, withIntermediateDirectories: true)
        let cache =
            c.archive.cacheMaxBytes > 0
            ? FileCache(root: c.archive.cacheDirectory!, maxBytes: c.archive.cacheMaxBytes) : nil
        let installations = casaInstallations(c)
        var services = RestoreServices(
            catalogue: catalogue, store: store, cache: cache, parallelTransfers: max(1, c.archive.parallelTransfers),
            allowProprietary: c.catalogue.allowProprietary,
            rawdataCommand: c.archive.rawdataSource == "command" ? c.archive.rawdataCommand : nil,
            archiveLimits: c.archive.limits.archiveLimits,
            casaInstallations: installations, defaultCASA: c.casa.defaultInstallation,
            casaVersionPolicy: c.casa.versionPolicy,
            casaOnDemand: c.casa.installOnDemand
                ? CASASelection.OnDemand(directory: c.casaVenvsDirectory, programDir: c.casa.programDirectory) : nil,
            casaTimeout: .milliseconds(Int(c.casa.timeoutSeconds * 1000)),
            casaKillGrace: .milliseconds(Int(c.casa.killGraceSeconds * 1000)),
            casaParallelExecBlocks: c.casa.parallelExecBlocks ?? ModularRunner.defaultParallelExecBlocks,
            downloadDirectory: c.delivery.directory!, downloadBaseURL: c.delivery.baseURL,
            deliveryGroup: try deliveryGroup(c.delivery.group),
            agentVersion: DropboxAgentCommand.version, sources: c.sources.restoreSettings, httpOptions: httpOptions(c),
            diskSpaceFactor: c.agent.diskSpaceFactor,
            execution: ExecutionSettings(
                backend: c.execution.backend, slurm: c.execution.slurm.settings, maxSubmissions: c.agent.maxAttempts,
                jobScript: c.casa.programDirectory.map { $0 + "/run_job.sh" }))
        services.deliveryDirectoryMode = mode_t(c.delivery.directoryMode, radix: 8) ?? 0o755
        services.deliveryFileMode = mode_t(c.delivery.fileMode, radix: 8) ?? 0o644
        services.deliveryRetention = c.delivery.retentionSeconds
        return services
    }

    /// The NGAS store's login headers: HTTP Basic from `archive.username` and the first line of
    /// `archive.passwordFile`; none without a username.
    /// - Throws: ``ConfigurationError`` when the password file cannot be read.
    static func storeLogin(_ c: AgentConfiguration) throws -> [String: String] {
        guard let user = c.archive.username, let file = c.archive.passwordFile else { return [:] }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw ConfigurationError(
                path: "$.archive.passwordFile", message: "cannot read the archive store's password file \(file)")
        }
        let password = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        return HTTPArchiveStore.basicAuthorization(user: user, password: password)
    }

    /// Transfer options for every HTTP source (NGAS, package servers, the ALMA archive).
    static func httpOptions(_ c: AgentConfiguration) -> HTTPStoreOptions {
        var options = HTTPStoreOptions()
        options.maxAttempts = c.archive.maxAttempts
        options.lowSpeedLimitBytes = c.archive.lowSpeedBytesPerSecond
        options.lowSpeedTime = .milliseconds(Int(c.archive.lowSpeedSeconds * 1000))
        return options
    }

    /// Every installation a restore may use: the configured ones, the embedded modular venv (`modular`), and the
    /// complete venvs under `<data>/casa-venvs/<version>` (`casa install --version`, `casa.installOnDemand`) as
    /// `modular-<version>`.
    static func casaInstallations(_ c: AgentConfiguration) -> [CASAInstallation] {
        var installations = c.casa.installations
        if !installations.contains(where: { $0.name == "modular" }) {
            installations.append(modularInstallation(c))
        }
        let dir = c.casaVenvsDirectory
        for entry in ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted() {
            let venv = dir + "/" + entry
            guard CASAVersion(entry) != nil, CASAEnvironment.isComplete(venv: venv) else { continue }
            let version = CASAEnvironment.installedVersion(venv: venv) ?? entry
            let name = "modular-\(version)"
            if installations.contains(where: { $0.name == name }) { continue }
            installations.append(
                CASAInstallation(
                    name: name, kind: .modular, home: venv, version: version, programDir: c.casa.programDirectory))
        }
        return installations
    }

    /// The embedded modular installation: the venv made by `dropbox-agent casa install`. Its version is casatools'
    /// in the venv (what `casaenv.py check` reports), else the version `casa install` would create.
    static func modularInstallation(_ c: AgentConfiguration) -> CASAInstallation {
        let venv = c.casa.modularVenv!
        let version =
            CASAEnvironment.installedVersion(venv: venv)
            ?? c.casa.programDirectory.flatMap { CASAEnvironment.pinnedVersion(programDir: $0) } ?? "unknown"
        return CASAInstallation(
            name: "modular", kind: .modular, home: venv, version: version, programDir: c.casa.programDirectory)
    }

    static func deliveryGroup(_ name: String?) throws -> gid_t? {
        guard let name else { return nil }
        if let gid = gid_t(name) { return gid }
        guard let group = getgrnam(name) else {
            throw ConfigurationError(path: "$.delivery.group", message: "no such group \"\(name)\"")
        }
        return group.pointee.gr_gid
    }

    func context(for job: ExecutionJob) -> RestoreContext {
        RestoreContext(
            request: job.request, requestName: job.name, restoreId: job.jobId, root: job.restoreRoot,
            services: services, logger: job.logger)
    }

    func execute(
        _ job: ExecutionJob, completed: Set<StepName>, observer: any PipelineObserver, reporter: any StepReporter
    ) async -> (PipelineOutcome, ExecutionResult) {
        let context = context(for: job)
        var completed = completed
        var reused = false
        if !completed.contains(.rawdata),
            FileManager.default.fileExists(atPath: context.workArea.root + "/reused/reused.json")
        {
            // Resumed after an earlier restore was linked in (steps 2–5 are not recorded as run): still reused.
            reused = true
        } else if let restoreCache, !completed.contains(.rawdata) {
            // Step 1 alone first: with the plan and the CASA choice known, an earlier restore of the same inputs is reused.
            if !completed.contains(.prepare) {
                let first = await RestorePipeline(steps: [PrepareStep()]).run(
                    context, completed: completed, observer: observer, reporter: reporter)
                guard case .succeeded = first else { return (first, runningFacts(job) ?? ExecutionResult()) }
                completed.insert(.prepare)
            }
            reused = await reuse(restoreCache, context: context, job: job)
        }
        if reused {
            completed.formUnion([.prepare, .rawdata, .calibration, .ppr, .casa])
        } else {
            // A job started outside the slots (a likely reuse that did not happen) takes a slot before the raw data.
            await job.waitForSlot?()
        }
        let pipeline = RestorePipeline(steps: RestoreContext.steps)
        let outcome = await pipeline.run(context, completed: completed, observer: observer, reporter: reporter)
        if case .succeeded = outcome, !reused, let restoreCache { await keep(restoreCache, context: context, job: job) }
        var result = runningFacts(job) ?? ExecutionResult()
        if let metadata = try? context.metadata() {
            result.facts = [
                "project": metadata.project, "mous": metadata.mous.rawValue,
                "execblocks": metadata.plan.execBlocks.map(\.uid.rawValue).joined(separator: ", "),
            ]
        }
        // Step 6 passes what it delivered; only a job whose step 6 had completed before a restart reads its record.
        let delivered = completed.contains(.deliver) ? DeliverStep.record(context) : context.delivered.record
        if case .succeeded = outcome, let record = delivered {
            result.result = .init(
                deliveryPath: record.deliveryPath, url: record.url, measurementSets: record.measurementSets,
                sizeBytes: record.sizeBytes,
                expiresAt: record.expiresAt, downloadCommand: record.downloadCommand, products: record.products,
                plots: record.plots)
            if let expiry, let name = record.name,
                let expires = record.expiresAt.flatMap({ Timestamp.date($0) })
            {
                do {
                    try expiry.register(
                        .init(
                            jobId: job.jobId, name: name, path: record.deliveryPath,
                            expiresAt: expires.timeIntervalSince1970,
                            statusPath: spoolDirectory + "/" + SpoolNames.statusFile(for: job.name)))
                } catch {
                    job.logger.error(
                        "cannot register the delivery for expiry; remove it by hand",
                        metadata: ["path": "\(record.deliveryPath)", "error": "\(error)"])
                }
            }
        }
        return (outcome, result)
    }

    /// Registers a linked request's status file for the expiry of the delivery it shares (its own record, so the
    /// sweep marks its status file as well as the original's; the directory is removed once).
    func linkedToDelivery(jobId: String, statusPath: String, result: StatusDocument.Result?, logger: Logger) {
        guard let expiry, let result, result.expiredAt == nil, !result.deliveryPath.isEmpty,
            let expires = result.expiresAt.flatMap({ Timestamp.date($0) })
        else { return }
        let path = result.deliveryPath
        do {
            try expiry.register(
                .init(
                    jobId: jobId, name: PathString.lastComponent(path), path: path,
                    expiresAt: expires.timeIntervalSince1970, statusPath: statusPath))
        } catch {
            logger.error(
                "cannot register the linked request for the delivery's expiry; its status will not say it expired",
                metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    /// Whether the restore cache holds a restore of `mous` (checked for requests waiting for a slot).
    func mayReuse(mous: String) -> Bool {
        guard let restoreCache else { return false }
        return restoreCache.holds(mous: mous)
    }

    /// The CASA choice recorded in `metadata.json` (step 1, revised in step 3) and its warning.
    func runningFacts(_ job: ExecutionJob) -> ExecutionResult? {
        guard let choice = (try? context(for: job).metadata())?.casa else { return nil }
        var result = ExecutionResult()
        result.casa = StatusDocument.CASA(
            version: choice.version, manifestVersion: choice.manifestVersion, installation: choice.installation)
        result.warnings = choice.warning.map { [$0] } ?? []
        return result
    }

    func cacheStatistics() async -> CacheStatistics? { await services.cache?.statistics }

    func cleanUp(_ job: ExecutionJob, succeeded: Bool) async {
        let remove = cleanPolicy == "always" || (cleanPolicy == "onSuccess" && succeeded)
        guard remove else { return }
        let root = job.restoreRoot
        do {
            // Removing a working area of hundreds of GB takes a while: on a thread of its own.
            try await BlockingWork.run { (_) throws in try FileManager.default.removeItem(atPath: root) }
            job.logger.info("working area removed", metadata: ["path": "\(job.restoreRoot)"])
        } catch {
            job.logger.warning(
                "cannot remove the working area", metadata: ["path": "\(job.restoreRoot)", "error": "\(error)"])
        }
    }
}
