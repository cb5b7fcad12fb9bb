internal import FoundationEssentials
internal import Glibc
public import Logging

/// Step 5 as a batch job: the same CASA command the local backend runs (``CASACommandRunner/command(for:)``),
/// handed to a ``BatchScheduler`` through the fixed job script `casa/run_job.sh`.
///
/// **One job per request, not a job array with a gather job.** `restore_mous.py` already restores each execution
/// block in its own CASA process, `--parallel N` at a time (N = `execution.slurm.cpusPerTask`), after a preflight
/// that every EB shares (manifest, caltables untarred once per session), and the success check needs all EBs
/// together. One job keeps that in one place: one allocation on one node whose cores the EB processes share, one
/// id to re-attach to, one `scancel`, one exit record, and the same program and progress lines as the local
/// backend, so the two cannot drift apart. An array (preflight job, one job per EB, a dependent check job) would
/// spread a restore over nodes but triple the states a crash can leave behind; it is the way to go when single
/// MOUSes outgrow one node.
///
/// What survives the agent: the job (the scheduler owns it), its progress (the `PROGRESS` lines `restore_mous.py`
/// writes to `<logs>/casa-stdout.log`) and its outcome (`run_job.sh`'s exit record), all in the working area.
/// The checkpoint ``ExecutionRecord`` names the job before `sbatch` runs, so a restarted agent re-attaches — by
/// id, or by name when it died before recording the id — and CASA is not started again.
public struct ScheduledRunner: CASARunner {
    /// The scheduler the job goes to.
    public let scheduler: any BatchScheduler
    /// Builds the CASA command (the local runner of the installation).
    public let local: any CASACommandRunner
    /// The restore's id (the agent's job id): names the jobs.
    public let restoreId: String
    /// `casa/run_job.sh`.
    public let jobScript: String
    /// Submissions in all, when the scheduler loses the job (node failure, preemption).
    public let maxSubmissions: Int
    /// Between reads of the job's state and progress.
    public let pollInterval: Duration
    let logger: Logger

    public init(
        scheduler: any BatchScheduler, local: any CASACommandRunner, restoreId: String, jobScript: String,
        maxSubmissions: Int, pollInterval: Duration, logger: Logger
    ) {
        self.scheduler = scheduler
        self.local = local
        self.restoreId = restoreId
        self.jobScript = jobScript
        self.maxSubmissions = max(1, maxSubmissions)
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// How a job ended, as the runner needs to act on it.
    enum Ending {
        case exited(JobExitRecord?, BatchJobState?)
        /// Cancelled by the runner at the time limit (a scheduler that does not enforce one).
        case timedOut(JobExitRecord?)
        case stopped(BatchStopCause, BatchJobState)
        case lost
    }

    public func run(_ invocation: CASAInvocation, reporter: any StepReporter) async throws -> CASARunResult {
        let command = try local.command(for: invocation)
        let logs = invocation.logsDirectory
        let stdoutLog = CASAInstallation.join(logs, "casa-stdout.log")
        let jobArgv = [command.executable] + command.arguments
        var record = ExecutionRecord.load(logs: logs) ?? ExecutionRecord(backend: scheduler.backendName)
        var logger = self.logger
        logger[metadataKey: "execution.backend"] = .string(scheduler.backendName)

        if let last = record.submissions.last, !last.concluded {
            logger.notice(
                "re-attaching to the batch job submitted before the agent restarted",
                metadata: [
                    "job.name": .string(last.name), "execution.jobId": .string(last.jobId ?? "unknown"),
                ])
            if last.jobId == nil {
                try await recoverOrSubmit(
                    &record, command: command, invocation: invocation, reporter: reporter, logger: logger)
            }
        } else {
            try await submitNew(
                &record, command: command, invocation: invocation, stdoutLog: stdoutLog, reporter: reporter,
                logger: logger)
        }

        while true {
            let index = record.submissions.count - 1
            let ending = try await follow(
                &record, index: index, stdoutLog: stdoutLog, logs: logs, timeout: invocation.timeout,
                reporter: reporter, logger: logger)
            let submission = record.submissions[index]
            record.submissions[index].concluded = true
            try record.save(logs: logs)
            reporter.reportExecution(record.status)
            let id = submission.jobId ?? "?"
            switch ending {
            case .exited(let exit, let state):
                let status = exit?.exitStatus ?? Self.exitStatus(schedulerExitCode: state?.exitCode)
                let seconds = exit.flatMap { e in e.started.flatMap { s in e.ended.map { $0 - s } } } ?? 0
                logger.info(
                    "batch job ended",
                    metadata: [
                        "execution.jobId": .string(id), "execution.state": .string(state?.summary ?? "unknown"),
                        "casa.exitStatus": "\(status)", "casa.duration.seconds": .stringConvertible(seconds),
                        "job.host": .string(exit?.host ?? "unknown"),
                    ])
                return CASARunResult(
                    exitStatus: status, timedOut: false, duration: .milliseconds(Int64(seconds * 1000)), argv: jobArgv,
                    environment: command.environment, stdoutLog: stdoutLog,
                    casaLogs: RunnerSupport.casaLogs(in: invocation.workingDirectory))
            case .timedOut(let exit):
                let seconds = Date().timeIntervalSince1970 - (submission.submittedAt ?? Date().timeIntervalSince1970)
                logger.warning(
                    "CASA ran past its time limit; the job was stopped",
                    metadata: [
                        "execution.jobId": .string(id),
                        "casa.timeout.seconds": .stringConvertible(invocation.timeout.components.seconds),
                    ])
                return CASARunResult(
                    exitStatus: exit?.exitStatus ?? .signalled(SIGKILL), timedOut: true,
                    duration: .milliseconds(Int64(seconds * 1000)),
                    argv: jobArgv, environment: command.environment, stdoutLog: stdoutLog,
                    casaLogs: RunnerSupport.casaLogs(in: invocation.workingDirectory))
            case .stopped(let cause, let state):
                let message =
                    "\(scheduler.backendName) job \(id) (\(submission.name)) was stopped by the scheduler: \(state.summary)"
                logger.error(
                    "batch job stopped by the scheduler",
                    metadata: [
                        "execution.jobId": .string(id), "execution.state": .string(state.state),
                        "execution.reason": .string(state.reason ?? "none"),
                    ])
                if cause.isRetryable && record.submissions.count < maxSubmissions {
                    logger.warning(
                        "submitting the job again",
                        metadata: [
                            "submission": .stringConvertible(record.submissions.count + 1),
                            "max": .stringConvertible(maxSubmissions),
                        ])
                    // The stopped job's processes may still be dying (a node set down, a preemption's grace): give
                    // them up to 30 s — until the exit record appears — before a new CASA writes into the same
                    // working directory.
                    let clock = ContinuousClock()
                    let deadline = clock.now + .seconds(30)
                    while JobExitRecord.read(submission.exitRecord) == nil && clock.now < deadline {
                        try await Task.sleep(for: .milliseconds(500))
                    }
                    try await submitNew(
                        &record, command: command, invocation: invocation, stdoutLog: stdoutLog, reporter: reporter,
                        logger: logger)
                    continue
                }
                throw Self.error(
                    cause: cause, message: message, submissions: record.submissions.count, max: maxSubmissions)
            case .lost:
                if record.submissions.count < maxSubmissions {
                    logger.warning(
                        "the job vanished without an exit record; submitting it again",
                        metadata: [
                            "execution.jobId": .string(id),
                            "submission": .stringConvertible(record.submissions.count + 1),
                        ])
                    try await submitNew(
                        &record, command: command, invocation: invocation, stdoutLog: stdoutLog, reporter: reporter,
                        logger: logger)
                    continue
                }
                throw RestoreError(
                    .jobLost,
                    "\(scheduler.backendName) job \(id) (\(submission.name)) is no longer known to the scheduler and left no exit record in \(submission.exitRecord)",
                    hint:
                        "The controller forgot the job (MinJobAge) before it could write its record, or the node lost the working area; check the node's log. Drop the request again to retry.",
                    step: .casa)
            }
        }
    }
}

extension ExecutionRecord.Submission {
    /// The job's output file (`sbatch --output`): the job script's own messages and the scheduler's.
    func output(logs: String) -> String { CASAInstallation.join(logs, "\(name).out") }
}
