internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Submitting: a new job, or the one a crashed agent had already submitted (found by id or by name).
extension ScheduledRunner {
    /// A new submission: the previous attempt's traces cleared, the checkpoint written before `sbatch`, then
    /// submitted (retried, and looked up by name after a failure).
    func submitNew(
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
    func recoverOrSubmit(
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
    func submitOrFind(
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

    func remember(
        _ id: String, in record: inout ExecutionRecord, index: Int, logs: String, reporter: any StepReporter
    ) throws {
        record.submissions[index].jobId = id
        record.submissions[index].state = "PENDING"
        try record.save(logs: logs)
        reporter.reportExecution(record.status)
    }
}
