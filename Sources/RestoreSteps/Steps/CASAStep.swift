internal import Delivery
internal import Logging
internal import FoundationEssentials
internal import Glibc

/// Step 5: CASA restores the measurement sets from the PPR, with the installation recorded in `metadata.json`
/// (chosen in step 1 and checked against `casa.versionPolicy` as soon as the manifest was read; see
/// ``CASASelection``); a `casa.installOnDemand` venv is created here, on first use. Success is judged by
/// ``CASASuccessCheck`` — errorexit markers, SEVERE lines, the measurement sets themselves — never by the exit
/// code alone.
public struct CASAStep: PipelineStep {
    public let name = StepName.casa
    public init() {}

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let metadata = try context.metadata()
        let area = context.workArea
        let working = area.working(metadata.relativePath)
        let rawdata = area.rawdata(metadata.relativePath)
        let (installation, choice) = try await Self.installation(
            metadata: metadata, rawdata: rawdata, context: context, reporter: reporter)
        let manifestVersion = choice.manifestVersion
        // A CASA left running by an agent that was killed is re-attached to (its job is in the execution
        // checkpoint); anything else working in the directory is stopped before a new job starts.
        let runner = try Self.runner(
            installation: installation, asdmBytes: metadata.plan.execBlocks.map(\.asdm.size), context: context)
        let asdmNames = metadata.plan.execBlocks.map(\.asdmDiskName.rawValue)
        // The CASA side unpacks caltables and flag versions with the same limits as the agent (archive.limits,
        // bounded per tarball by its catalogued size), written afresh for every run.
        let limitsFile = area.logs + "/" + CASAArchiveLimits.fileName
        let casaLimits = CASAArchiveLimits(
            limits: context.services.archiveLimits, products: metadata.plan.products,
            asdmBytes: Dictionary(
                metadata.plan.execBlocks.map { ($0.asdmDiskName.rawValue, $0.asdm.size) }, uniquingKeysWith: max))
        let limitsDocument: Data
        do {
            limitsDocument = try casaLimits.encoded()
        } catch {
            throw RestoreError(.internalError, "cannot encode \(CASAArchiveLimits.fileName): \(error)", step: .casa)
        }
        try FileSystemSteps.createDirectory(area.logs)
        try FileSystemSteps.writeAtomically(limitsDocument, to: limitsFile)
        if installation.kind == .pipeline {
            // The pipeline unpacks caltables and flag versions itself, unconfined: the agent's extractor checks them first.
            let products = area.products(metadata.relativePath)
            let checked = try await BlockingWork.run { (_) throws(RestoreError) -> [String] in
                try PipelineArchiveCheck.check(
                    products: products, limits: casaLimits, scratch: working + "/.archive-check")
            }
            context.logger.info(
                "calibration tarballs checked before the pipeline unpacks them", metadata: ["tarballs": "\(checked)"])
        }
        let invocation = CASAInvocation(
            ppr: PPRStep.path(context, metadata), root: area.root, relativePath: metadata.relativePath.rawValue,
            logsDirectory: area.logs, timeout: context.services.casaTimeout, asdmNames: asdmNames,
            archiveLimitsFile: limitsFile)
        context.logger.info(
            "starting CASA",
            metadata: [
                "installation": "\(installation.name)", "kind": "\(installation.kind.rawValue)",
                "version": "\(installation.version)", "manifest.casaversion": "\(manifestVersion ?? "-")",
            ])
        let result = try await runner.run(invocation, reporter: reporter)
        try Task.checkCancellation()
        let seconds = Double(result.duration.components.seconds) + Double(result.duration.components.attoseconds) / 1e18
        let record = CASARunRecord(
            installation: installation.name, version: installation.version, durationSeconds: seconds, result: result)
        if let data = try? JSONEncoder().encode(record) {
            try? FileSystemSteps.writeAtomically(data, to: area.logs + "/casa-run.json")
        }
        let verdict = CASASuccessCheck.evaluate(
            result: result, working: working, products: area.products(metadata.relativePath),
            expectedAsdmNames: asdmNames)
        context.logger.info(
            "CASA finished",
            metadata: [
                "exit": "\(result.exitStatus)", "seconds": "\(result.duration)", "success": "\(verdict.isSuccess)",
                "harmless.severe": .stringConvertible(verdict.harmlessSevereCount),
            ])
        try verdict.check()
        reporter.report(StepProgress(fraction: 1, message: "\(asdmNames.count) measurement sets restored"))
    }

    /// The runner for `installation` on the configured backend: the local runner itself, or a ``ScheduledRunner``
    /// around it (the same command, as a batch job; the modular restore runs `cpusPerTask` EBs at once there).
    static func runner(
        installation: CASAInstallation, asdmBytes: [Int64], context: RestoreContext
    ) throws(RestoreError) -> any CASARunner {
        let executionBlocks = asdmBytes.count
        let execution = context.services.execution
        let grace = context.services.casaKillGrace
        // On Slurm the job asks for one core per execution block unless execution.slurm.cpusPerTask says otherwise
        // (the plan knows the EBs; restore_mous.py restores that many at once).
        var slurm = execution.slurm
        slurm.cpusPerTask = slurm.cpusPerTask ?? max(1, executionBlocks)
        // And memory by the documented rule of ``SlurmResources/memory(asdmBytes:parallel:)`` unless
        // execution.slurm.memory is set.
        slurm.memory = slurm.memory ?? SlurmResources.memory(asdmBytes: asdmBytes, parallel: slurm.cpusPerTask ?? 1)
        let parallel = execution.backend == .slurm ? (slurm.cpusPerTask ?? 1) : context.services.casaParallelExecBlocks
        let local: any CASACommandRunner =
            switch installation.kind {
            case .pipeline: PipelineRunner(installation: installation, gracePeriod: grace, logger: context.logger)
            case .modular:
                ModularRunner(
                    installation: installation, programDir: installation.programDir, gracePeriod: grace,
                    parallelExecBlocks: parallel, logger: context.logger)
            }
        guard let script = execution.jobScript else {
            throw RestoreError(
                .casaUnavailable, "the job script run_job.sh is not known (casa.programDirectory)",
                hint: "Set casa.programDirectory to the directory holding restore_mous.py and run_job.sh.", step: .casa)
        }
        switch execution.backend {
        case .local:
            // On this host, detached from the agent: CASA survives an agent restart and is re-attached to.
            return ScheduledRunner(
                scheduler: LocalScheduler(grace: grace, logger: context.logger), local: local,
                restoreId: context.restoreId,
                jobScript: script, maxSubmissions: execution.maxSubmissions, pollInterval: .milliseconds(250),
                logger: context.logger)
        case .slurm:
            return ScheduledRunner(
                scheduler: SlurmScheduler(settings: slurm), local: local, restoreId: context.restoreId,
                jobScript: script,
                maxSubmissions: execution.maxSubmissions,
                pollInterval: .milliseconds(Int(execution.slurm.pollSeconds * 1000)),
                logger: context.logger)
        }
    }

    /// The installation recorded in `metadata.json` (steps 1 and 3), created first when it is an on-demand venv
    /// not made yet. A working area from before the record existed chooses now, from the staged manifest.
    static func installation(
        metadata: RestoreMetadata, rawdata: String, context: RestoreContext, reporter: any StepReporter
    ) async throws -> (CASAInstallation, ChosenCASA) {
        guard let choice = metadata.casa, choice.manifestRead else {
            let manifest = stagedManifest(rawdata: rawdata)
            return try context.chooseCASA(
                manifestVersion: manifest?.document.casaVersion, manifestRead: true, step: .casa,
                modularRefusal: manifest.flatMap {
                    CASASelection.modularRefusal(for: $0.document, manifestName: $0.name)
                })
        }
        if let found = context.services.casaInstallations.first(where: { $0.name == choice.installation }),
            choice.createOnFirstUse == nil
        {
            return (found, choice)
        }
        guard let home = choice.createOnFirstUse, let onDemand = context.services.casaOnDemand,
            let version = CASAVersion(choice.version)
        else {
            throw RestoreError(
                .casaNotConfigured,
                "CASA installation \"\(choice.installation)\" chosen for this restore is no longer configured.",
                hint:
                    "Restore the installation in the configuration, or remove the working area and drop the request again.",
                step: .casa)
        }
        let installation = onDemand.installation(version: version)
        if !CASAEnvironment.isComplete(venv: home) {
            guard let programDir = installation.programDir else {
                throw RestoreError(
                    .casaUnavailable, "cannot create CASA \(version): casa.programDirectory (casaenv.py) is not known",
                    step: .casa)
            }
            reporter.report(
                StepProgress(
                    message: "creating the CASA \(version) environment in \(home) (first use: about 2 GB from PyPI)"))
            context.logger.notice(
                "creating a CASA environment on first use", metadata: ["version": "\(version)", "venv": "\(home)"])
            do {
                try await CASAEnvironment.install(
                    venv: home, programDir: programDir, version: version.description, logger: context.logger)
            } catch let error as RestoreError {
                throw RestoreError(
                    .casaUnavailable, "CASA \(version) (casa.installOnDemand) could not be created: \(error.message)",
                    hint:
                        "See casa/README.md for the versions PyPI has for this Python; or install CASA \(version) as a pipeline installation, or turn casa.installOnDemand off to use an installed CASA under casa.versionPolicy.",
                    step: .casa)
            }
        }
        return (installation, choice)
    }

    private static func stagedManifest(rawdata: String) -> (name: String, document: PipelineManifest)? {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: rawdata)) ?? []).filter {
            $0.hasSuffix("pipeline_manifest.xml")
        }
        guard let chosen = PipelineManifest.select(from: names),
            let document = try? PipelineManifest.parse(file: rawdata + "/" + chosen)
        else { return nil }
        return (chosen, document)
    }
}

/// `logs/casa-run.json`: how the CASA run went, for operators and the overhead benchmark.
struct CASARunRecord: Codable {
    var installation: String
    var version: String
    /// Wall time of the CASA process alone.
    var durationSeconds: Double
    var result: CASARunResult
}
