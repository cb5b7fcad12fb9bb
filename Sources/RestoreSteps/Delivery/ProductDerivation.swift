internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Logging

/// What `casa/derive_products.py` made and checked.
public struct DerivationReport: Codable, Sendable, Equatable {
    public struct Product: Codable, Sendable, Equatable {
        public var name: String
        public var kind: String
        public var eb: String
        public var rows: Int
        public var expectedRows: Int
        public var spws: [Int]
        public var fields: [String]
    }
    public var products: [Product]
    public var plots: [String]
    public var casa: String?
    public var error: String?
}

/// Derived products (science, targets, contsub; averaged if asked) and quick-look plots, made from the restored
/// measurement sets by real CASA tasks in the modular CASA (`casa/derive_products.py`: mstransform, uvcontsub with
/// the pipeline's `cont.dat`, casatools checks of every product against the restored MS, matplotlib plots), never
/// through a shell.
///
/// Where it runs follows `execution.backend`, like the restore: `local`, a process group of the agent on its host;
/// `slurm`, a batch job (``ScheduledRunner`` with ``SlurmScheduler``, the same job script `run_job.sh`, one core,
/// the configured partition, account, memory and time limit), so CASA's derivation load lands on the cluster, not on
/// the agent's host. Its job is named `dropbox-derive-<restore id>-<n>` and followed like the restore's (progress
/// from `derived/logs/casa-stdout.log`, the outcome from the exit record); an agent restarted meanwhile re-attaches
/// to it by its checkpoint `derived/logs/execution.json`. The status file's `execution` keeps describing step 5's
/// job; the derivation's job id is in the log (`batch job submitted`, `job.name` `dropbox-derive-…`).
enum ProductDerivation {
    static let program = "derive_products.py"

    struct Spec: Codable {
        struct EB: Codable { var ms: String }
        var ebs: [EB]
        var content: [String]
        var average: RestoreRequest.DeliveryAverage?
        var contdat: String?
        var outputDirectory: String
        var plotDirectory: String?
    }

    /// The modular installation that derives: the restore's own when modular, else the first modular one.
    static func installation(
        _ context: RestoreContext, _ metadata: RestoreMetadata
    ) throws(RestoreError) -> CASAInstallation {
        let modular = context.services.casaInstallations.filter { $0.kind == .modular }
        if let chosen = metadata.casa?.installation, let own = modular.first(where: { $0.name == chosen }) {
            return own
        }
        guard let first = modular.first(where: { $0.name == "modular" }) ?? modular.first else {
            throw RestoreError(
                .casaUnavailable,
                "derived products and quick-look plots need a modular CASA installation, and none is configured",
                hint: "Create it with `dropbox-agent casa install`.", step: .deliver)
        }
        return first
    }

    /// The pipeline's `cont.dat` among the staged products (the auxiliary products are expanded there in step 3).
    static func contDat(products: String) -> String? {
        if FileManager.default.fileExists(atPath: products + "/cont.dat") { return products + "/cont.dat" }
        guard let items = try? FileManager.default.subpathsOfDirectory(atPath: products) else { return nil }
        for item in items {
            if PathString.lastComponent(item) == "cont.dat", !item.contains(".ms/") {
                return products + "/" + item
            }
        }
        return nil
    }

    /// Runs the derivation unless a complete earlier run (same spec) left its report; returns the report.
    static func run(
        context: RestoreContext, metadata: RestoreMetadata, measurementSets: [String],
        content: [RestoreRequest.DeliveryContent],
        average: RestoreRequest.DeliveryAverage?, contdat: String?, directory: String, reporter: any StepReporter
    ) async throws -> DerivationReport {
        let spec = Spec(
            ebs: measurementSets.map { .init(ms: $0) }, content: content.filter { $0 != .calibrated }.map(\.rawValue),
            average: average,
            contdat: contdat, outputDirectory: directory + "/products", plotDirectory: directory + "/plots")
        let specPath = directory + "/spec.json"
        let reportPath = directory + "/report.json"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let specData = try encoder.encode(spec)
        let sameSpec = FileManager.default.contents(atPath: specPath) == specData
        if sameSpec, let data = FileManager.default.contents(atPath: reportPath),
            let done = try? JSONDecoder().decode(DerivationReport.self, from: data), done.error == nil,
            done.products.allSatisfy({ FileSystemSteps.exists(spec.outputDirectory + "/" + $0.name) })
        {
            return done
        }
        let batchLogs = directory + "/logs"
        let backend = context.services.execution.backend
        // A batch job of this same derivation that an earlier agent submitted and did not see end: re-attached to
        // below, its directory left as it is.
        let reattach =
            sameSpec && backend == .slurm
            && (ExecutionRecord.load(logs: batchLogs)?.submissions.last.map { !$0.concluded } ?? false)
        if !reattach {
            FileSystemSteps.remove(directory)
            try FileSystemSteps.createDirectory(spec.outputDirectory)
            try FileSystemSteps.writeAtomically(specData, to: specPath)
        }
        let installation = try installation(context, metadata)
        guard let programDir = installation.programDir else {
            throw RestoreError(
                .casaUnavailable, "the CASA programs directory (casa.programDirectory) is not known", step: .deliver)
        }
        let home = context.workArea.logs + "/home"
        try FileSystemSteps.createDirectory(home)
        var environment: [String: String] = ["PATH": installation.path, "LANG": "C.UTF-8", "HOME": home]
        environment.merge(installation.extraEnvironment) { _, new in new }
        environment.merge([
            "CASASITECONFIG": CASAInstallation.join(installation.home, "casasiteconfig.py"), "MPLBACKEND": "Agg",
            "PYTHONUNBUFFERED": "1",
        ]) { _, new in new }
        let command = CASACommand(
            executable: CASAInstallation.join(installation.home, "bin/python3"),
            arguments: [CASAInstallation.join(programDir, program), specPath, reportPath], environment: environment)
        context.logger.info(
            "deriving products",
            metadata: [
                "content": "\(spec.content)", "installation": "\(installation.name)",
                "execution.backend": "\(backend.rawValue)",
            ])
        let exitStatus: CASAExitStatus
        let timedOut: Bool
        let stdoutLog: String
        switch backend {
        case .local:
            stdoutLog = context.workArea.logs + "/derive-stdout.log"
            let process = CASAProcess(
                executable: command.executable, arguments: command.arguments, environment: environment,
                workingDirectory: directory, stdoutLog: stdoutLog,
                timeout: context.services.casaTimeout, gracePeriod: context.services.casaKillGrace)
            let outcome = try await process.run(reporter: reporter, logger: context.logger)
            (exitStatus, timedOut) = (outcome.exitStatus, outcome.timedOut)
        case .slurm:
            try FileSystemSteps.createDirectory(batchLogs)
            let result = try await runAsBatchJob(
                command, context: context, directory: directory, logs: batchLogs, specPath: specPath,
                reporter: reporter)
            (exitStatus, timedOut, stdoutLog) = (result.exitStatus, result.timedOut, result.stdoutLog)
        }
        try Task.checkCancellation()
        let report = FileManager.default.contents(atPath: reportPath).flatMap {
            try? JSONDecoder().decode(DerivationReport.self, from: $0)
        }
        guard exitStatus.isSuccess, let report, report.error == nil else {
            let why =
                report?.error
                ?? (timedOut ? "it ran longer than casa.timeoutSeconds" : "it ended \(exitStatus)")
            throw RestoreError(
                .derivationFailed, "the derived products could not be made: \(why)",
                hint: "See \(stdoutLog).", step: .deliver)
        }
        return report
    }

    /// The derivation as a batch job on the configured cluster (`execution.backend: slurm`): one task, one core
    /// (derive_products.py runs one CASA task at a time), the cluster settings of the restore otherwise.
    static func runAsBatchJob(
        _ command: CASACommand, context: RestoreContext, directory: String, logs: String, specPath: String,
        reporter: any StepReporter
    ) async throws -> CASARunResult {
        let execution = context.services.execution
        guard let script = execution.jobScript else {
            throw RestoreError(
                .casaUnavailable, "the job script run_job.sh is not known (casa.programDirectory)",
                hint: "Set casa.programDirectory to the directory holding restore_mous.py and run_job.sh.",
                step: .deliver)
        }
        var slurm = execution.slurm
        slurm.cpusPerTask = 1
        let runner = ScheduledRunner(
            scheduler: SlurmScheduler(settings: slurm), local: FixedCommand(command: command),
            restoreId: "derive-" + context.restoreId, jobScript: script, maxSubmissions: execution.maxSubmissions,
            pollInterval: .milliseconds(Int(execution.slurm.pollSeconds * 1000)), logger: context.logger)
        let invocation = CASAInvocation(
            ppr: specPath, root: directory, relativePath: "", workingDirectory: directory, logsDirectory: logs,
            timeout: context.services.casaTimeout, asdmNames: [])
        do {
            return try await runner.run(invocation, reporter: DerivationJobReporter(base: reporter))
        } catch let error as RestoreError {
            // The scheduler's own codes (jobSubmitFailed, jobTimeLimit, …) stay; the step is the delivery's.
            throw RestoreError(
                error.code, "the derivation job: " + error.message, hint: error.hint, step: .deliver,
                isTransient: error.isTransient)
        }
    }
}

/// The derivation's command, as a ``ScheduledRunner`` submits it (it is never run through this type directly).
struct FixedCommand: CASACommandRunner {
    let command: CASACommand

    func command(for invocation: CASAInvocation) throws(RestoreError) -> CASACommand { command }

    func run(_ invocation: CASAInvocation, reporter: any StepReporter) async throws -> CASARunResult {
        throw RestoreError(.internalError, "the derivation runs only as a batch job here", step: .deliver)
    }
}

/// Passes the derivation job's progress on; its execution state is not step 5's, which the status file's
/// `execution` keeps describing (the derivation's job is logged).
struct DerivationJobReporter: StepReporter {
    let base: any StepReporter

    func report(_ progress: StepProgress) { base.report(progress) }

    func confirmOwnership() throws { try base.confirmOwnership() }
}

/// Passes progress on with its fraction mapped into `[start, end]` of the step, so that a part of a step (the
/// derivation, then publishing) never makes the step's progress go backwards.
struct ScaledReporter: StepReporter {
    let base: any StepReporter
    let start: Double
    let end: Double

    func report(_ progress: StepProgress) {
        var scaled = progress
        scaled.fraction = progress.fraction.map { start + (end - start) * min(1, max(0, $0)) }
        base.report(scaled)
    }

    func confirmOwnership() throws { try base.confirmOwnership() }
}

extension RestoreError.Code {
    /// CASA could not make or check the derived products (science, targets, contsub) or the quick-look plots.
    public static let derivationFailed: Self = "derivationFailed"
}
