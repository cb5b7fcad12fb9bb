internal import FoundationEssentials
internal import Glibc
internal import Logging

/// Following a submitted job to its end, and stopping it (cancel, release).
extension ScheduledRunner {
    /// Follows the newest job to its end: progress from the CASA output log, state from the scheduler, the outcome
    /// from the exit record. On cancellation the job is cancelled with the scheduler (unless this agent no longer
    /// owns the request: then the job belongs to the agent that took it over) and `CancellationError` is thrown.
    func follow(
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
            // Cancelled: handled at the top of the loop.
            if let id = record.submissions[index].jobId {
                await scheduler.waitForEnd(of: id, upTo: pollInterval)
            } else {
                try? await Task.sleep(for: pollInterval)
            }
        }
    }

    /// `scancel`, then waits (up to a minute) for the scheduler to report the job ended — outside the cancelled
    /// task, so the commands are not cut short themselves.
    func cancelJob(_ submission: ExecutionRecord.Submission, ownership: any StepReporter, logger: Logger) async {
        guard (try? ownership.confirmOwnership()) != nil else {
            logger.warning(
                "not cancelling the batch job: another agent owns the request now",
                metadata: ["execution.jobId": .string(submission.jobId ?? "?")])
            return
        }
        await stopJob(submission, logger: logger)
    }

    /// Cancels the job with the scheduler and waits (up to a minute) for it to end, in a task of its own.
    func stopJob(_ submission: ExecutionRecord.Submission, logger: Logger) async {
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
}
