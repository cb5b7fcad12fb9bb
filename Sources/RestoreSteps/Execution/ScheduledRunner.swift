internal import Foundation
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
    private let logger: Logger

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

    // MARK: - Submitting

    /// A new submission: the previous attempt's traces cleared, the checkpoint written before `sbatch`, then
    /// submitted (retried, and looked up by name after a failure).
    private func submitNew(
        _ record: inout ExecutionRecord, command: CASACommand, invocation: CASAInvocation, stdoutLog: String,
        reporter: any StepReporter, logger: Logger
    ) async throws {
        await scheduler.prepareNewSubmission(workingDirectory: invocation.workingDirectory)
        if let archive = try RunnerSupport.clearPreviousAttempt(invocation) {
            logger.notice(
                "moved the previous attempt's CASA logs and markers aside", metadata: ["casa.archive": .string(archive)]
            )
        }
        let number = (record.submissions.last?.number ?? 0) + 1
        let name = SlurmText.jobName(restoreId: restoreId, submission: number)
        let exitRecord = CASAInstallation.join(invocation.logsDirectory, "\(name).exit.json")
        try? FileManager.default.removeItem(atPath: exitRecord)
        let header =
            "# dropbox-agent: \(scheduler.backendName) job \(name)\n"
            + "# dropbox-agent: argv: \(([command.executable] + command.arguments).joined(separator: " "))\n"
            + "# dropbox-agent: cwd: \(invocation.workingDirectory)\n"
        guard FileManager.default.createFile(atPath: stdoutLog, contents: Data(header.utf8)) else {
            throw RestoreError(
                .casaFailed, "Cannot create the CASA output log \(stdoutLog).",
                hint: "Check that the logs directory exists and is writable.", step: .casa)
        }
        record.submissions.append(
            .init(
                number: number, name: name, jobId: nil, exitRecord: exitRecord, state: "submitting",
                submittedAt: Date().timeIntervalSince1970))
        try record.save(logs: invocation.logsDirectory)
        reporter.reportExecution(record.status)
        try await recoverOrSubmit(&record, command: command, invocation: invocation, reporter: reporter, logger: logger)
    }

    /// ``recoverOrSubmit(_:command:invocation:reporter:logger:)``, and when cancelled while submitting, the job is
    /// looked up by name and cancelled too (an `sbatch` cut short may have submitted it).
    private func recoverOrSubmit(
        _ record: inout ExecutionRecord, command: CASACommand, invocation: CASAInvocation, reporter: any StepReporter,
        logger: Logger
    ) async throws {
        do {
            try await submitOrFind(
                &record, command: command, invocation: invocation, reporter: reporter, logger: logger)
        } catch is CancellationError {
            let index = record.submissions.count - 1
            await cancelJob(record.submissions[index], ownership: reporter, logger: logger)
            record.submissions[index].state = "CANCELLED"
            record.submissions[index].concluded = true
            try? record.save(logs: invocation.logsDirectory)
            throw CancellationError()
        }
    }

    /// For the newest submission without an id: finds it by name (an earlier `sbatch` may have reached the
    /// controller), else submits it — up to three tries, 2 s and 4 s apart, each failure followed by a look-up by
    /// name (an `sbatch` that reports an error can still have submitted the job).
    private func submitOrFind(
        _ record: inout ExecutionRecord, command: CASACommand, invocation: CASAInvocation, reporter: any StepReporter,
        logger: Logger
    ) async throws {
        let index = record.submissions.count - 1
        let submission = record.submissions[index]
        if let found = try? await scheduler.jobs(named: submission.name).last {
            logger.notice(
                "found the job submitted before the agent restarted",
                metadata: ["job.name": .string(submission.name), "execution.jobId": .string(found)])
            try remember(found, in: &record, index: index, logs: invocation.logsDirectory, reporter: reporter)
            return
        }
        if JobExitRecord.read(submission.exitRecord) != nil {
            return  // it ran and ended; follow() takes the exit record
        }
        let spec = BatchJobSpec(
            name: submission.name, script: jobScript,
            arguments: [
                submission.exitRecord, CASAInstallation.join(invocation.logsDirectory, "casa-stdout.log"),
                "/usr/bin/env", "-i",
            ]
                + command.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
                + [command.executable] + command.arguments,
            workingDirectory: invocation.workingDirectory,
            output: submission.output(logs: invocation.logsDirectory),
            timeLimitSeconds: Int(invocation.timeout.components.seconds))
        var failures: [String] = []
        for attempt in 1...3 {
            try Task.checkCancellation()
            do {
                let id = try await scheduler.submit(spec)
                logger.notice(
                    "batch job submitted",
                    metadata: [
                        "job.name": .string(spec.name), "execution.jobId": .string(id),
                        "submission": .stringConvertible(submission.number),
                    ])
                try remember(id, in: &record, index: index, logs: invocation.logsDirectory, reporter: reporter)
                return
            } catch {
                failures.append("\(error)")
                logger.warning(
                    "submitting the batch job failed",
                    metadata: ["error": .string("\(error)"), "try": .stringConvertible(attempt)])
                if let found = try? await scheduler.jobs(named: spec.name).last {
                    logger.notice(
                        "the failed submission did submit the job", metadata: ["execution.jobId": .string(found)])
                    try remember(found, in: &record, index: index, logs: invocation.logsDirectory, reporter: reporter)
                    return
                }
                if attempt < 3 { try await Task.sleep(for: .seconds(2 * attempt)) }
            }
        }
        record.submissions[index].state = "submit failed"
        record.submissions[index].concluded = true
        try record.save(logs: invocation.logsDirectory)
        reporter.reportExecution(record.status)
        throw RestoreError(
            .jobSubmitFailed,
            "\(scheduler.backendName): the job could not be submitted (3 tries): \(failures.last ?? "")",
            hint:
                "Check execution.slurm (partition, account, resources, extraArguments) against `sinfo`, and that the agent's host can reach the controller (`dropbox-agent check --cluster`).",
            step: .casa)
    }

    private func remember(
        _ id: String, in record: inout ExecutionRecord, index: Int, logs: String, reporter: any StepReporter
    ) throws {
        record.submissions[index].jobId = id
        record.submissions[index].state = "PENDING"
        try record.save(logs: logs)
        reporter.reportExecution(record.status)
    }

    // MARK: - Following

    /// Follows the newest job to its end: progress from the CASA output log, state from the scheduler, the outcome
    /// from the exit record. On cancellation the job is cancelled with the scheduler (unless this agent no longer
    /// owns the request: then the job belongs to the agent that took it over) and `CancellationError` is thrown.
    private func follow(
        _ record: inout ExecutionRecord, index: Int, stdoutLog: String, logs: String, timeout: Duration,
        reporter: any StepReporter, logger: Logger
    ) async throws -> Ending {
        let submission = record.submissions[index]
        var progress = ProgressFollower(path: stdoutLog)
        let clock = ContinuousClock()
        var unknownSince: ContinuousClock.Instant?
        var terminalSince: ContinuousClock.Instant?
        var controllerTroubleSince: ContinuousClock.Instant?
        while true {
            if Task.isCancelled {
                await cancelJob(submission, ownership: reporter, logger: logger)
                record.submissions[index].state = "CANCELLED"
                record.submissions[index].concluded = true
                try? record.save(logs: logs)
                throw CancellationError()
            }
            if let latest = progress.poll() { reporter.report(latest) }
            let exit = JobExitRecord.read(submission.exitRecord)
            if !scheduler.enforcesTimeLimit, exit == nil, let submitted = submission.submittedAt,
                Date().timeIntervalSince1970 - submitted > Double(timeout.components.seconds)
            {
                await stopJob(record.submissions[index], logger: logger)
                record.submissions[index].state = "TIMEOUT"
                try? record.save(logs: logs)
                return .timedOut(JobExitRecord.read(submission.exitRecord))
            }
            var state: BatchJobState?
            var known = true
            if let id = record.submissions[index].jobId {
                do {
                    state = try await scheduler.state(of: id)
                    known = state != nil
                    controllerTroubleSince = nil
                } catch {
                    // The controller not answering is not the job failing: keep following, for up to 10 minutes.
                    let since = controllerTroubleSince ?? clock.now
                    controllerTroubleSince = since
                    logger.warning("cannot read the batch job's state", metadata: ["error": .string(error.description)])
                    if clock.now - since > .seconds(600) {
                        throw RestoreError(
                            .jobLost, "\(scheduler.backendName) does not answer for 10 minutes: \(error.description)",
                            hint:
                                "Check the controller (`scontrol ping`); the job may still run: drop the request again once it answers.",
                            step: .casa, isTransient: true)
                    }
                }
            } else {
                known = false
            }
            if let state, state.state != record.submissions[index].state {
                record.submissions[index].state = state.state
                try? record.save(logs: logs)
                reporter.reportExecution(record.status)
                logger.info(
                    "batch job state",
                    metadata: [
                        "execution.jobId": .string(submission.jobId ?? "?"), "execution.state": .string(state.summary),
                    ])
            }
            switch state?.phase {
            case .stopped(let cause)?:
                // The scheduler stopped it: its reason wins over the exit status (143 after a time limit's SIGTERM).
                if exit != nil || terminalSince.map({ clock.now - $0 > .seconds(15) }) == true {
                    if let latest = progress.poll() { reporter.report(latest) }
                    return .stopped(cause, state!)
                }
                terminalSince = terminalSince ?? clock.now
            case .ended?:
                // Killed for its memory where Slurm enforces it by sampling (no cgroups): FAILED, and slurmstepd's
                // reason only in the job's output file.
                if let state, exit == nil, let reason = Self.memoryKill(output: submission.output(logs: logs)) {
                    var stopped = state
                    stopped.reason = reason
                    return .stopped(.outOfMemory, stopped)
                }
                // The record may lag behind the scheduler (written at the very end, or seen late over NFS).
                if exit != nil || terminalSince.map({ clock.now - $0 > .seconds(30) }) == true {
                    if let latest = progress.poll() { reporter.report(latest) }
                    return .exited(exit, state)
                }
                terminalSince = terminalSince ?? clock.now
            case .pending?, .running?:
                unknownSince = nil
            case nil where known == false && controllerTroubleSince == nil:
                // Forgotten by the controller (MinJobAge) and not in accounting: the exit record decides, and
                // names the state the scheduler would have shown (its run script exited 0 or not).
                if let exit {
                    if let latest = progress.poll() { reporter.report(latest) }
                    let ended = exit.status == 0 ? "COMPLETED" : "FAILED"
                    if record.submissions[index].state != ended {
                        logger.notice(
                            "the scheduler no longer knows the batch job; its exit record decides",
                            metadata: [
                                "execution.jobId": .string(submission.jobId ?? "?"), "execution.state": .string(ended),
                                "casa.exitStatus": "\(exit.exitStatus)",
                            ])
                        record.submissions[index].state = ended
                    }
                    return .exited(exit, nil)
                }
                let since = unknownSince ?? clock.now
                unknownSince = since
                if clock.now - since > .seconds(30) { return .lost }
            case nil:
                break
            }
            do {
                try await Task.sleep(for: pollInterval)
            } catch {
                continue  // cancelled: handled at the top of the loop
            }
        }
    }

    /// `scancel`, then waits (up to a minute) for the scheduler to report the job ended — outside the cancelled
    /// task, so the commands are not cut short themselves.
    private func cancelJob(_ submission: ExecutionRecord.Submission, ownership: any StepReporter, logger: Logger) async
    {
        guard (try? ownership.confirmOwnership()) != nil else {
            logger.warning(
                "not cancelling the batch job: another agent owns the request now",
                metadata: ["execution.jobId": .string(submission.jobId ?? "?")])
            return
        }
        await stopJob(submission, logger: logger)
    }

    /// Cancels the job with the scheduler and waits (up to a minute) for it to end, in a task of its own.
    private func stopJob(_ submission: ExecutionRecord.Submission, logger: Logger) async {
        let scheduler = self.scheduler
        let name = submission.name
        let known = submission.jobId
        let task = Task.detached {
            var ids = known.map { [$0] } ?? []
            if ids.isEmpty { ids = (try? await scheduler.jobs(named: name)) ?? [] }
            for id in ids {
                do {
                    try await scheduler.cancel(id)
                    logger.notice("batch job cancelled", metadata: ["execution.jobId": .string(id)])
                } catch {
                    logger.error(
                        "cannot cancel the batch job",
                        metadata: ["execution.jobId": .string(id), "error": .string("\(error)")])
                }
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(60)
                while clock.now < deadline {
                    let state = try? await scheduler.state(of: id)
                    if state == nil || state?.phase.isTerminal == true { break }
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
        }
        await task.value
    }

    // MARK: - Errors

    static func error(cause: BatchStopCause, message: String, submissions: Int, max: Int) -> RestoreError {
        switch cause {
        case .timeLimit:
            RestoreError(
                .jobTimeLimit, message,
                hint: "Raise execution.slurm.timeLimit (or casa.timeoutSeconds), or ask for more cores (cpusPerTask).",
                step: .casa)
        case .outOfMemory:
            RestoreError(.jobOutOfMemory, message, hint: "Raise execution.slurm.memory.", step: .casa)
        case .nodeFailure:
            RestoreError(
                .jobNodeFailure, message + " (submitted \(submissions) of agent.maxAttempts = \(max) times)",
                hint: "Check the cluster's nodes (`sinfo -R`).", step: .casa)
        case .preempted:
            RestoreError(
                .jobPreempted, message + " (submitted \(submissions) of agent.maxAttempts = \(max) times)",
                hint: "Use a partition or QOS without preemption (execution.slurm.partition, extraArguments).",
                step: .casa)
        case .cancelled:
            RestoreError(
                .jobCancelled, message,
                hint: "Someone cancelled the job with the scheduler (scancel); drop the request again to restore it.",
                step: .casa)
        case .other:
            RestoreError(.jobFailed, message, hint: "See the scheduler's logs for the job.", step: .casa)
        }
    }

    /// Slurm's memory-kill line in the job's output file (its last 64 KiB), if any.
    static func memoryKill(output path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        let size = (try? handle.seekToEnd()) ?? 0
        try? handle.seek(toOffset: size > 65536 ? size - 65536 : 0)
        guard let data = try? handle.readToEnd() else { return nil }
        return SlurmText.memoryKill(jobOutput: String(decoding: data, as: UTF8.self))
    }

    /// Slurm's `ExitCode=<code>:<signal>` as an exit status (used only when the job left no exit record).
    static func exitStatus(schedulerExitCode: String?) -> CASAExitStatus {
        let parts = (schedulerExitCode ?? "").split(separator: ":").compactMap { Int32($0) }
        if parts.count == 2, parts[1] != 0 { return .signalled(parts[1]) }
        return .exited(parts.first ?? -1)
    }
}

/// Reads the `PROGRESS` lines a job appends to its output log, from where the last read stopped (after a
/// restart: from the start, so progress resumes at the job's latest line).
struct ProgressFollower {
    let path: String
    private var offset: UInt64 = 0
    private var partial = ""

    init(path: String) { self.path = path }

    /// The newest progress in what was appended since the last call, if any.
    mutating func poll() -> StepProgress? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard (try? handle.seek(toOffset: offset)) != nil, let data = try? handle.readToEnd(), !data.isEmpty else {
            return nil
        }
        offset += UInt64(data.count)
        var latest: StepProgress?
        let text = partial + String(decoding: data, as: UTF8.self)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        partial = String(lines.removeLast())
        for line in lines where line.hasPrefix("PROGRESS ") {
            if let p = ProgressLine.parse(line) { latest = p }
        }
        return latest
    }
}

extension RestoreError.Code {
    /// The batch job could not be submitted (`sbatch` failed three times).
    public static let jobSubmitFailed: Self = "jobSubmitFailed"
    /// The scheduler stopped the job at its time limit.
    public static let jobTimeLimit: Self = "jobTimeLimit"
    /// The scheduler stopped the job for exceeding its memory.
    public static let jobOutOfMemory: Self = "jobOutOfMemory"
    /// The job's node failed, on every submission (`agent.maxAttempts`).
    public static let jobNodeFailure: Self = "jobNodeFailure"
    /// The job was preempted, on every submission (`agent.maxAttempts`).
    public static let jobPreempted: Self = "jobPreempted"
    /// Someone cancelled the job with the scheduler.
    public static let jobCancelled: Self = "jobCancelled"
    /// The scheduler ended the job for another reason.
    public static let jobFailed: Self = "jobFailed"
    /// The scheduler no longer knows the job and it left no exit record, or the scheduler does not answer.
    public static let jobLost: Self = "jobLost"
}

extension ExecutionRecord.Submission {
    /// The job's output file (`sbatch --output`): the job script's own messages and the scheduler's.
    func output(logs: String) -> String { CASAInstallation.join(logs, "\(name).out") }
}
