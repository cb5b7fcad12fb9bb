import Delivery
import Foundation
import Logging
import RestoreSteps

/// The real restore: the six steps of `RestoreSteps` with the site's services from the configuration.
struct ProductionExecutor: RestoreExecutor {
    let services: RestoreServices
    let cleanPolicy: String
    let logger: Logger

    init(configuration c: AgentConfiguration, logger: Logger) throws {
        self.logger = logger
        cleanPolicy = c.delivery.cleanWorkingArea
        services = try Self.services(c)
    }

    /// Builds the site's services from the configuration (also used by `validate --plan` and `check`).
    static func services(_ c: AgentConfiguration) throws -> RestoreServices {
        try FileManager.default.createDirectory(atPath: c.dataDirectory, withIntermediateDirectories: true)
        let catalogue = try SQLiteCatalogue(path: c.catalogue.sqlite!)
        let store: any ArchiveStore
        if let url = c.archive.url {
            store = HTTPArchiveStore(baseURL: url, options: httpOptions(c))
        } else {
            try FileManager.default.createDirectory(atPath: c.archive.localDirectory!, withIntermediateDirectories: true)
            store = LocalDirectoryStore(root: c.archive.localDirectory!)
        }
        try FileManager.default.createDirectory(atPath: c.archive.cacheDirectory!, withIntermediateDirectories: true)
        let cache = c.archive.cacheMaxBytes > 0 ? FileCache(root: c.archive.cacheDirectory!, maxBytes: c.archive.cacheMaxBytes) : nil
        var installations = c.casa.installations
        if !installations.contains(where: { $0.name == "modular" }) {
            installations.append(modularInstallation(c))
        }
        return RestoreServices(
            catalogue: catalogue, store: store, cache: cache, parallelTransfers: max(1, c.archive.parallelTransfers),
            allowProprietary: c.catalogue.allowProprietary,
            rawdataCommand: c.archive.rawdataSource == "command" ? c.archive.rawdataCommand : nil,
            casaInstallations: installations, defaultCASA: c.casa.defaultInstallation,
            casaTimeout: .milliseconds(Int(c.casa.timeoutSeconds * 1000)), casaKillGrace: .milliseconds(Int(c.casa.killGraceSeconds * 1000)),
            casaParallelExecBlocks: c.casa.parallelExecBlocks ?? ModularRunner.defaultParallelExecBlocks,
            downloadDirectory: c.delivery.directory!, downloadBaseURL: c.delivery.baseURL, deliveryGroup: try deliveryGroup(c.delivery.group),
            agentVersion: DropboxAgentCommand.version, sources: c.sources.restoreSettings, httpOptions: httpOptions(c))
    }

    /// Transfer options for every HTTP source (NGAS, package servers, the ALMA archive).
    static func httpOptions(_ c: AgentConfiguration) -> HTTPStoreOptions {
        var options = HTTPStoreOptions()
        options.maxAttempts = c.archive.maxAttempts
        options.lowSpeedLimitBytes = c.archive.lowSpeedBytesPerSecond
        options.lowSpeedTime = .milliseconds(Int(c.archive.lowSpeedSeconds * 1000))
        return options
    }

    /// The embedded modular installation: the venv made by `dropbox-agent casa install`.
    static func modularInstallation(_ c: AgentConfiguration) -> CASAInstallation {
        CASAInstallation(name: "modular", kind: .modular, home: c.casa.modularVenv!, version: "6.7.0.31", programDir: c.casa.programDirectory)
    }

    static func deliveryGroup(_ name: String?) throws -> gid_t? {
        guard let name else { return nil }
        if let gid = gid_t(name) { return gid }
        guard let group = getgrnam(name) else { throw ConfigurationError(path: "$.delivery.group", message: "no such group \"\(name)\"") }
        return group.pointee.gr_gid
    }

    func context(for job: ExecutionJob) -> RestoreContext {
        RestoreContext(request: job.request, requestName: job.name, restoreId: job.jobId, root: job.restoreRoot, services: services, logger: job.logger)
    }

    func execute(_ job: ExecutionJob, completed: Set<StepName>, observer: any PipelineObserver, reporter: any StepReporter) async -> (PipelineOutcome, ExecutionResult) {
        let context = context(for: job)
        let pipeline = RestorePipeline(steps: RestoreContext.steps)
        let outcome = await pipeline.run(context, completed: completed, observer: observer, reporter: reporter)
        var result = ExecutionResult()
        if let metadata = try? context.metadata() {
            result.facts = [
                "project": metadata.project, "mous": metadata.mous.rawValue,
                "execblocks": metadata.plan.execBlocks.map(\.uid.rawValue).joined(separator: ", "),
            ]
        }
        if case .succeeded = outcome, let record = DeliverStep.record(context) {
            result.result = .init(deliveryPath: record.deliveryPath, url: record.url, measurementSets: record.measurementSets, sizeBytes: record.sizeBytes)
        }
        return (outcome, result)
    }

    func cleanUp(_ job: ExecutionJob, succeeded: Bool) async {
        let remove = cleanPolicy == "always" || (cleanPolicy == "onSuccess" && succeeded)
        guard remove else { return }
        let root = job.restoreRoot
        do {
            // Removing a working area of hundreds of GB takes a while: on a thread of its own.
            try await BlockingWork.run { (_) throws in try FileManager.default.removeItem(atPath: root) }
            job.logger.info("working area removed", metadata: ["path": "\(job.restoreRoot)"])
        } catch {
            job.logger.warning("cannot remove the working area", metadata: ["path": "\(job.restoreRoot)", "error": "\(error)"])
        }
    }
}
