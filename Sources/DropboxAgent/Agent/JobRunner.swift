import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// Runs one claimed request from its first incomplete step to a terminal status (or a checkpoint).
struct JobRunner: Sendable {
    let jobId: String
    let name: String
    /// The request as parsed at intake, handed over by the claim; nil for a job resumed after a restart or taken
    /// over, which reads the claimed copy (``AcceptedRequest/load(claimedCopy:)``).
    let intake: AcceptedRequest?
    /// The attempt this runner holds: the fencing token checked before each step, before publishing, before
    /// mailing and before concluding.
    let attempt: Int
    let agent: any JobOwner
    let control: JobControl
    let logger: Logger

    var store: JobStore { agent.store }
    var records: StatusRecords { agent.records }
    /// True after a restart or takeover: steps recorded as completed are not run again.
    var resume: Bool { intake == nil }
    var settings: SpoolAgent.Settings { agent.settings }
    var statusPath: String { settings.spoolDirectory + "/" + SpoolNames.statusFile(for: name) }
    var directory: String { store.jobDirectory(jobId) }

    /// Runs the job. Its own bookkeeping — checkpoint, lease and status writes (fsync), `flock`, journal rows
    /// (SQLite) — runs on ``Bookkeeping/executor``'s threads; the restore steps run on the cooperative pool, their
    /// blocking parts in ``BlockingWork``.
    func run() async {
        await withTaskExecutorPreference(Bookkeeping.executor) { await runOnBookkeepingThreads() }
    }

    /// ``run()``'s body; nonisolated and async, so that calling it from the preference's closure moves it onto the
    /// bookkeeping threads.
    private func runOnBookkeepingThreads() async {
        var retried = false
        var delay = 1.0
        while true {
            do {
                try await runChecked(resume: resume || retried)
                return
            } catch is LeaseLost {
                logger.error(
                    "lease lost to another agent; stopped without writing anything more",
                    metadata: ["attempt": .stringConvertible(attempt)])
                return
            } catch {
                // A status, checkpoint or lease write failed (a full disk, typically). The job is not abandoned in
                // `running`: it keeps its slot and lease and resumes from its checkpoint once writes work again.
                let noSpace = DiskSpace.isNoSpace(error)
                logger.error(
                    noSpace
                        ? "no space left on device (ENOSPC); the request resumes when space returns"
                        : "job bookkeeping failed; the request resumes from its checkpoint",
                    metadata: ["error": "\(error)", "retry.seconds": .stringConvertible(delay)])
                guard control.stopReason == nil, store.holdsLease(jobId: jobId, attempt: attempt) else {
                    logger.error(
                        "job left to lease recovery",
                        metadata: ["stop.reason": "\(control.stopReason?.rawValue ?? "lease lost")"])
                    return
                }
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 30)
                retried = true
            }
        }
    }

    private func runChecked(resume: Bool) async throws {
        // The request parsed at intake. A resumed or taken-over job, and a claim whose file was rewritten after
        // intake, parse the claimed copy in the job store instead, with the same function.
        let claimedCopy = directory + "/request.json"
        let accepted: AcceptedRequest
        if let intake, intake.isUnchanged(at: claimedCopy) {
            accepted = intake
        } else {
            switch try AcceptedRequest.load(claimedCopy: claimedCopy) {
            case .accepted(let loaded):
                accepted = loaded
            case .rejected(let error):
                // Changed between validation and claim: reject what we hold now.
                try rejectClaimed(code: error.code, message: error.message)
                return
            }
        }
        let parsed = accepted.parsed
        let sha = accepted.sha256
        var request = parsed.request
        if !parsed.choseDeliveryFormat { request.deliveryFormat = settings.defaultDeliveryFormat }
        // What was published for the request so far (intake's `waiting`/`queued`, or an earlier attempt's): its
        // record in the job store, never the status file.
        let existingStatus = records.read(name)
        let now = Timestamp.now()
        var checkpoint =
            store.readCheckpoint(jobId: jobId)
            ?? JobCheckpoint(
                jobId: jobId, name: name, spoolDirectory: settings.spoolDirectory, sha256: sha,
                submittedAt: existingStatus?.submittedAt ?? now, restoreRoot: settings.restoreDirectory + "/" + jobId)
        guard let lease = store.lease(jobId: jobId, attempt: attempt), lease.owner == AgentIdentity.current,
            store.holdsLease(jobId: jobId, attempt: attempt)
        else {
            logger.warning("lease not ours; leaving the job to its owner")
            return
        }
        CrashPoint.hit("before-duplicate-check")
        // Also on resume: a kill between the claim and this check must not run an identical request again. The
        // check is idempotent (the index already naming this job lets it run).
        if checkpoint.completedSteps.isEmpty,
            try await linkIfDuplicate(sha: sha, request: request, checkpoint: checkpoint)
        {
            return
        }
        let firstPending = StepName.allCases.first { !checkpoint.completedSteps.contains($0) } ?? .deliver
        if checkpoint.startedAt == nil { checkpoint.startedAt = now }
        Bookkeeping.noteWrite()
        try store.writeCheckpoint(checkpoint)

        var document = existingStatus ?? StatusDocument(request: name, state: .queued)
        if document.state.isTerminal && !resume {
            document = StatusDocument(request: name, state: .queued)
            document.sequence = existingStatus?.sequence
        }
        let store = self.store
        let jobId = self.jobId
        let attempt = self.attempt
        let control = self.control
        let publisher = StatusPublisher(
            path: statusPath, recordPath: records.recordPath(name), document: document, mode: settings.statusFileMode,
            logger: logger,
            fence: {
                if store.holdsLease(jobId: jobId, attempt: attempt) { return true }
                control.stop(.leaseLost, interruptNow: true)
                return false
            })
        let agent = self.agent
        let name = self.name
        let job = ExecutionJob(
            jobId: jobId, name: name, request: request, restoreRoot: checkpoint.restoreRoot, jobDirectory: directory,
            attempt: lease.countedAttempts, logger: logger, waitForSlot: { await agent.acquireSlot(name: name) })

        // The previous attempt had won the conclusion and written the terminal status, then died before the move
        // to finished/ (a host killed whole, a crash): its outcome stands and its mail is queued. Running the job
        // again would write `running` over a terminal status, and a status never goes back from a terminal state:
        // only what follows the status is done here.
        if resume, let concluded = existingStatus, concluded.state.isTerminal,
            // (by suffix: another host may mount the spool elsewhere)
            concluded.requestFile?.hasSuffix("/finished/" + jobId + "/request.json") == true,
            store.lease(jobId: jobId, attempt: attempt - 1)?.concludes != nil
        {
            try claimConclusion()
            logger.notice(
                "the previous attempt had concluded the request; completing its conclusion",
                metadata: ["state": "\(concluded.state.rawValue)"])
            try await completeConclusion(
                concluded, step: concluded.error == nil ? nil : concluded.step?.name, job: job, sha: sha,
                startedAt: checkpoint.startedAt, facts: [:])
            return
        }
        if lease.countedAttempts > settings.maxAttempts {
            try await conclude(
                .failed(
                    RestoreError(
                        .tooManyAttempts,
                        "the request was started \(lease.countedAttempts - 1) times without finishing (the agent running it stopped or crashed each time)",
                        hint:
                            "Look at the journal and the logs of the earlier attempts; raise agent.maxAttempts to allow more."
                    )),
                result: ExecutionResult(), job: job, request: request, checkpoint: checkpoint, publisher: publisher,
                sha: sha)
            return
        }
        // A CASA left running by a killed agent is stopped by step 5 itself (processes working in the restore's
        // working directory), just before it runs CASA again.

        // Who ran it before: the previous attempt's lease says (the status may name whoever last wrote `queued`).
        // A released lease (clean stop, transient wait) is no takeover: the status says so then (no agent).
        let previous =
            store.lease(jobId: jobId, attempt: attempt - 1).flatMap {
                $0.released ? nil : StatusDocument.Agent(host: $0.owner.host, pid: $0.owner.pid)
            }
            ?? existingStatus?.agent
        let startMessage =
            resume
            ? Self.resumeMessage(previous: previous, step: firstPending, attempt: lease.countedAttempts) : "claimed"
        try publisher.transition(to: .running, step: firstPending, message: startMessage) { doc in
            // A takeover or resume at the step the status already shows is still a line in the history.
            if resume, doc.history.last?.message != startMessage {
                doc.history.append(
                    .init(at: doc.updatedAt, state: .running, step: .init(firstPending), message: startMessage))
            }
            doc.requestId = request.requestId
            doc.mous = request.mous
            doc.sha256 = sha
            doc.attempt = lease.countedAttempts
            doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
            doc.submittedAt = doc.submittedAt ?? checkpoint.submittedAt
            doc.startedAt = doc.startedAt ?? checkpoint.startedAt
            doc.requestFile = directory + "/request.json"
            doc.workingArea = checkpoint.restoreRoot
            doc.logs = checkpoint.restoreRoot + "/logs"
            doc.error = nil
            doc.result = nil
            doc.finishedAt = nil
        }
        record(
            publisher.document, step: firstPending.rawValue, attempt: lease.countedAttempts,
            message: resume ? "resumed" : "claimed")

        let observer = JobObserver(
            runner: self, checkpoint: checkpoint, publisher: publisher, attempt: lease.countedAttempts, job: job)
        // The steps themselves on the cooperative pool (they hand their blocking work to BlockingWork); the observer
        // moves each step transition back onto the bookkeeping threads.
        let executor = agent.executor
        let (outcome, result) = await withTaskExecutorPreference(globalConcurrentExecutor) {
            await executor.execute(
                job, completed: Set(checkpoint.completedSteps), observer: observer, reporter: publisher)
        }
        try await conclude(
            outcome, result: result, job: job, request: request, checkpoint: observer.checkpoint, publisher: publisher,
            sha: sha)
    }

    /// How a resume reads in the history: a takeover names the agent it took the request from.
    static func resumeMessage(previous: StatusDocument.Agent?, step: StepName, attempt: Int) -> String {
        let me = AgentIdentity.current
        if let previous, previous.host != me.host || previous.pid != me.pid {
            return
                "taken over from \(previous.host) pid \(previous.pid); resumed at step \(step.number) (attempt \(attempt))"
        }
        return "resumed at step \(step.number) (attempt \(attempt))"
    }

    /// Throws ``LeaseLost`` (and stops the job) unless this agent still holds `attempt`.
    func checkFence() throws {
        guard store.holdsLease(jobId: jobId, attempt: attempt) else {
            control.stop(.leaseLost, interruptNow: false)
            throw LeaseLost()
        }
    }

    /// Wins the right to conclude this attempt (``JobStore/claimConclusion(jobId:attempt:)``) or throws
    /// ``LeaseLost`` (and stops the job) when another agent took it over first.
    func claimConclusion() throws {
        guard try store.claimConclusion(jobId: jobId, attempt: attempt) else {
            control.stop(.leaseLost, interruptNow: false)
            throw LeaseLost()
        }
    }

    private func rejectClaimed(code: RestoreError.Code, message: String) throws {
        let kept = store.rejectedDirectory + "/" + name + ".\(jobId).json"
        _ = rename(directory + "/request.json", kept)
        var doc = records.read(name) ?? StatusDocument(request: name, state: .rejected)
        doc.error = .init(
            code: code.rawValue, message: message,
            hint: "The file changed after it was validated; drop it again when complete.")
        doc.requestFile = kept
        doc.transition(to: .rejected, message: message)
        doc.advanceSequence()
        try records.write(doc, name: name)
        _ = try? store.finish(jobId: jobId, name: name, state: .rejected, statusPath: statusPath)
        agent.metrics.detail.finished(jobId: jobId, state: .rejected, code: code.rawValue, durationSeconds: nil)
        logger.error("request rejected", metadata: ["error.code": "\(code)", "error.message": "\(message)"])
    }

    func record(_ doc: StatusDocument, step: String?, attempt: Int, message: String?, jobDirectory: String? = nil) {
        Bookkeeping.noteWrite()
        do {
            try agent.journal.record(
                doc, jobId: jobId, attempt: attempt, step: step, jobDirectory: jobDirectory ?? directory,
                statusPath: statusPath, message: message)
        } catch {
            logger.error("cannot write the journal", metadata: ["error": "\(error)"])
        }
    }
}

/// This agent no longer holds the attempt it runs (another agent took the job over): stop, write nothing.
struct LeaseLost: Error, CustomStringConvertible {
    var description: String { "the lease of this attempt is held by another agent now" }
}
