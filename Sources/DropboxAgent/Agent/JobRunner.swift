import Delivery
import Foundation
import Logging
import RestoreSteps
import Synchronization

/// Runs one claimed request from its first incomplete step to a terminal status (or a checkpoint).
struct JobRunner: Sendable {
    let jobId: String
    let name: String
    /// True after a restart or takeover: steps recorded as completed are not run again.
    let resume: Bool
    /// The attempt this runner holds: the fencing token checked before each step, before publishing, before
    /// mailing and before concluding.
    let attempt: Int
    let agent: SpoolAgent
    let control: JobControl
    let logger: Logger

    private var store: JobStore { agent.store }
    private var settings: SpoolAgent.Settings { agent.settings }
    private var statusPath: String { settings.spoolDirectory + "/" + SpoolNames.statusFile(for: name) }
    private var directory: String { store.jobDirectory(jobId) }

    func run() async {
        var retried = false
        var delay = 1.0
        while true {
            do {
                try await runChecked(resume: resume || retried)
                return
            } catch is LeaseLost {
                logger.error("lease lost to another agent; stopped without writing anything more", metadata: ["attempt": "\(attempt)"])
                return
            } catch {
                // A status, checkpoint or lease write failed (a full disk, typically). The job is not abandoned in
                // `running`: it keeps its slot and lease and resumes from its checkpoint once writes work again.
                let noSpace = DiskSpace.isNoSpace(error)
                logger.error(
                    noSpace ? "no space left on device (ENOSPC); the request resumes when space returns" : "job bookkeeping failed; the request resumes from its checkpoint",
                    metadata: ["error": "\(error)", "retry.seconds": "\(delay)"])
                guard control.stopReason == nil, store.holdsLease(jobId: jobId, attempt: attempt) else {
                    logger.error("job left to lease recovery", metadata: ["stop.reason": "\(control.stopReason?.rawValue ?? "lease lost")"])
                    return
                }
                try? await Task.sleep(for: .seconds(delay))
                delay = min(delay * 2, 30)
                retried = true
            }
        }
    }

    private func runChecked(resume: Bool) async throws {
        guard let data = FileManager.default.contents(atPath: directory + "/request.json") else {
            throw SystemCallError(call: "read", path: directory + "/request.json", errno: errno)
        }
        let bytes = [UInt8](data)
        let sha = RequestDigest.hex(bytes)
        let parsed: ParsedRequest
        do { parsed = try RequestParser.parse(bytes) } catch {
            // Changed between validation and claim: reject what we hold now.
            try rejectClaimed(code: error.code, message: error.message)
            return
        }
        var request = parsed.request
        if !parsed.choseDeliveryFormat { request.deliveryFormat = settings.defaultDeliveryFormat }
        let existingStatus = StatusPublisher.existing(at: statusPath)
        let now = Timestamp.now()
        var checkpoint = store.readCheckpoint(jobId: jobId) ?? JobCheckpoint(
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
        if checkpoint.completedSteps.isEmpty, try await linkIfDuplicate(sha: sha, request: request, checkpoint: checkpoint) { return }
        let firstPending = StepName.allCases.first { !checkpoint.completedSteps.contains($0) } ?? .deliver
        if checkpoint.startedAt == nil { checkpoint.startedAt = now }
        try store.writeCheckpoint(checkpoint)

        var document = existingStatus ?? StatusDocument(request: name, state: .queued)
        if document.state.isTerminal && !resume {
            document = StatusDocument(request: name, state: .queued)
            document.sequence = existingStatus?.sequence
        }
        let store = self.store, jobId = self.jobId, attempt = self.attempt, control = self.control
        let publisher = StatusPublisher(
            path: statusPath, document: document, mode: settings.statusFileMode, logger: logger,
            fence: {
                if store.holdsLease(jobId: jobId, attempt: attempt) { return true }
                control.stop(.leaseLost, interruptNow: true)
                return false
            })
        let job = ExecutionJob(
            jobId: jobId, name: name, request: request, restoreRoot: checkpoint.restoreRoot, jobDirectory: directory,
            attempt: lease.countedAttempts, logger: logger)

        if lease.countedAttempts > settings.maxAttempts {
            try await conclude(
                .failed(RestoreError("tooManyAttempts", "the request was started \(lease.countedAttempts - 1) times without finishing (the agent running it stopped or crashed each time)", hint: "Look at the journal and the logs of the earlier attempts; raise agent.maxAttempts to allow more.")),
                result: ExecutionResult(), job: job, request: request, checkpoint: checkpoint, publisher: publisher, sha: sha)
            return
        }
        // A CASA left running by a killed agent is stopped by step 5 itself (processes working in the restore's
        // working directory), just before it runs CASA again.

        // Who ran it before: the previous attempt's lease says (the status may name whoever last wrote `queued`).
        // A released lease (clean stop, transient wait) is no takeover: the status says so then (no agent).
        let previous = store.lease(jobId: jobId, attempt: attempt - 1).flatMap { $0.released ? nil : StatusDocument.Agent(host: $0.owner.host, pid: $0.owner.pid) }
            ?? existingStatus?.agent
        let startMessage = resume ? Self.resumeMessage(previous: previous, step: firstPending, attempt: lease.countedAttempts) : "claimed"
        try publisher.transition(to: .running, step: firstPending, message: startMessage) { doc in
            // A takeover or resume at the step the status already shows is still a line in the history.
            if resume, doc.history.last?.message != startMessage {
                doc.history.append(.init(at: doc.updatedAt, state: .running, step: .init(firstPending), message: startMessage))
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
        record(publisher.document, step: firstPending.rawValue, attempt: lease.countedAttempts, message: resume ? "resumed" : "claimed")

        let observer = JobObserver(runner: self, checkpoint: checkpoint, publisher: publisher, attempt: lease.countedAttempts, job: job)
        let (outcome, result) = await agent.executor.execute(
            job, completed: Set(checkpoint.completedSteps), observer: observer, reporter: publisher)
        try await conclude(outcome, result: result, job: job, request: request, checkpoint: observer.checkpoint, publisher: publisher, sha: sha)
    }

    // MARK: - Ending

    private func conclude(
        _ outcome: PipelineOutcome, result: ExecutionResult, job: ExecutionJob, request: RestoreRequest,
        checkpoint: JobCheckpoint, publisher: StatusPublisher, sha: String
    ) async throws {
        var checkpoint = checkpoint
        let finalState: RequestState
        var error: RestoreError?
        switch outcome {
        case .succeeded:
            finalState = .succeeded
        case .failed(let failure):
            // A step failing on a full disk (a write's ENOSPC, or CASA killed when its filesystem filled) says so,
            // and is retried once space returns (within archive.retryHorizonSeconds).
            let e = DiskSpace.annotate(failure, paths: [checkpoint.restoreRoot])
            if e.isTransient, try scheduleRetry(after: e, checkpoint: checkpoint, publisher: publisher, job: job) { return }
            finalState = .failed
            error = e
            if e.isTransient, let since = checkpoint.transientSince {
                error?.message += " (transient failures since \(Timestamp.string(Date(timeIntervalSince1970: since))); retried until archive.retryHorizonSeconds = \(Int(settings.transientRetryHorizon)) s)"
            }
        case .cancelled(let step):
            switch control.stopReason {
            case .shutdown:
                let next = StepName.allCases.first { !checkpoint.completedSteps.contains($0) }
                try publisher.transition(to: .queued, message: "the agent stopped; the request resumes at step \(next?.number ?? 6) when an agent starts") { doc in
                    doc.agent = nil
                }
                _ = try store.renewLease(jobId: jobId, attempt: attempt, released: true)
                record(publisher.document, step: step?.rawValue, attempt: job.attempt, message: "checkpointed at shutdown")
                logger.notice("request checkpointed for shutdown", metadata: ["completed.steps": "\(checkpoint.completedSteps.map(\.rawValue))"])
                return
            case .leaseLost:
                logger.error("lease lost to another agent; stopped without touching the status")
                return
            case .cancelRequested, nil:
                finalState = .cancelled
                error = RestoreError(.cancelled, "cancelled at step \(step?.number ?? 0) \(step?.rawValue ?? "")", step: step)
            }
        }

        // Fencing: an agent that lost the lease (stalled, then taken over) mails and concludes nothing. Claiming the
        // conclusion and being taken over exclude each other (both are the exclusive link of the next attempt).
        try claimConclusion()
        // Notify before the final status, so the status can say whether the mail went out.
        var notifications: [StatusDocument.Notification] = publisher.document.notifications ?? []
        if settings.notifyOn.contains(finalState) && !checkpoint.notified,
           let earlier = try store.recordNotificationHandOff(jobId: jobId), earlier != AgentIdentity.current {
            logger.notice(
                "notification already queued by an earlier attempt; not queued again",
                metadata: ["queued.by": "\(earlier.host):\(earlier.pid)"])
            checkpoint.notified = true
            try checkFence()
            try store.writeCheckpoint(checkpoint)
        } else if settings.notifyOn.contains(finalState) && !checkpoint.notified {
            var preview = publisher.document
            preview.state = finalState
            preview.result = result.result
            preview.record(casa: result.casa, warning: result.warnings.first)
            if let error { preview.error = .init(code: error.code.rawValue, message: error.message, hint: error.hint) }
            notifications = await agent.notifier.enqueue(
                preview, request: request, facts: result.facts, id: jobId, statusPath: statusPath,
                jobDirectory: store.finishedDirectory + "/" + jobId)
            checkpoint.notified = true
            try checkFence()
            try store.writeCheckpoint(checkpoint)
        }
        // The request file's final home is known before the move: the terminal status never points at a path
        // that is about to vanish. (A crash between the two leaves the job in jobs/, and the restart concludes it
        // again; notifications are not sent twice.)
        let finished = store.finishedDirectory + "/" + jobId
        try publisher.transition(to: finalState, step: error?.step, message: error?.message) { doc in
            doc.result = result.result
            doc.record(casa: result.casa, warning: result.warnings.first)
            doc.error = error.map { .init(code: $0.code.rawValue, message: $0.message, hint: $0.hint) }
            doc.notifications = notifications.isEmpty ? nil : notifications
            doc.progress = nil
            doc.requestFile = finished + "/request.json"
        }
        try? store.writeIndexEntry(
            .init(jobId: jobId, name: name, state: finalState, finishedAt: Date().timeIntervalSince1970, statusPath: statusPath), sha256: sha)
        _ = try store.finish(jobId: jobId, name: name, state: finalState, statusPath: statusPath)
        record(publisher.document, step: error?.step?.rawValue, attempt: job.attempt, message: error?.message ?? finalState.rawValue, jobDirectory: finished)
        agent.metrics.add(finalState == .succeeded ? \.succeeded : finalState == .failed ? \.failed : \.cancelled)
        agent.metrics.detail.finished(
            jobId: jobId, state: finalState, code: error?.code.rawValue,
            durationSeconds: checkpoint.startedAt.flatMap(Timestamp.date).map { Date().timeIntervalSince($0) })
        await agent.executor.cleanUp(job, succeeded: finalState == .succeeded)
        if let area = publisher.document.workingArea, !FileManager.default.fileExists(atPath: area) {
            // Read-modify-write of the file (not the publisher's copy), under the lock the mail queue takes too: the
            // queue may already have written the notifications' outcome.
            try ConcludedStatus.modify(at: statusPath, ifRequestFile: finished + "/request.json", mode: settings.statusFileMode) { doc in
                doc.workingArea = nil
                doc.logs = nil  // they lived in the working area; the delivery keeps the CASA logs
            }
        }
        updateLinkedRequests(finishedDirectory: finished, final: publisher.document)
        if let hook = Self.concludedHook { await hook(statusPath) }
        // Across hosts nothing orders a `queued` that another host wrote in the instant before our claim against our
        // statuses (the spool-entry lock is per kernel): if such a stale one replaced our final status, write ours
        // again. Stale means an older sequence; a new request of the same name continues from ours (higher).
        if let onDisk = StatusPublisher.existing(at: statusPath), !onDisk.state.isTerminal,
           (onDisk.sequence ?? 0) < (publisher.document.sequence ?? 0) {
            logger.warning("a status another agent wrote around the claim had replaced the final one; writing it again",
                           metadata: ["replaced.state": "\(onDisk.state.rawValue)"])
            try? publisher.update { _ in }
        }
    }

    /// A transient failure (archive 5xx or unreachable, delivery area unavailable) is retried later with backoff
    /// while within `archive.retryHorizonSeconds` of the first one: the job is checkpointed, its lease released
    /// and `retryAt` set, so that this or any agent resumes it at the failed step then; the status says
    /// `waiting for archive, retry at …`. No slot is held while waiting.
    ///
    /// - Returns: false when the horizon is exhausted (the request fails).
    private func scheduleRetry(after e: RestoreError, checkpoint: JobCheckpoint, publisher: StatusPublisher, job: ExecutionJob) throws -> Bool {
        let now = Date().timeIntervalSince1970
        var checkpoint = checkpoint
        let since = checkpoint.transientSince ?? now
        let retries = checkpoint.transientRetries ?? 0
        let delay = min(900, settings.transientRetryInitial * pow(2, Double(min(retries, 20))))
        guard now + delay - since <= settings.transientRetryHorizon else { return false }
        try checkFence()
        checkpoint.transientSince = since
        checkpoint.transientRetries = retries + 1
        checkpoint.retryAt = now + delay
        try store.writeCheckpoint(checkpoint)
        let when = Timestamp.string(Date(timeIntervalSince1970: now + delay))
        let archiveStep = e.code != DiskSpace.code && e.step.map { [.prepare, .rawdata, .calibration].contains($0) } ?? true
        let message = archiveStep
            ? "waiting for archive, retry at \(when): \(e.message)"
            : "transient failure at step \(e.step?.number ?? 0) \(e.step?.rawValue ?? ""), retry at \(when): \(e.message)"
        try publisher.transition(to: .queued, message: message) { doc in
            doc.agent = nil
            doc.progress = .init(message: message)
        }
        _ = try store.renewLease(jobId: jobId, attempt: attempt, released: true)
        record(publisher.document, step: e.step?.rawValue, attempt: job.attempt, message: message)
        logger.warning("transient failure; retrying later", metadata: ["error.code": "\(e.code.rawValue)", "retry.at": "\(when)", "retry": "\(retries + 1)"])
        return true
    }

    /// How a resume reads in the history: a takeover names the agent it took the request from.
    static func resumeMessage(previous: StatusDocument.Agent?, step: StepName, attempt: Int) -> String {
        let me = AgentIdentity.current
        if let previous, previous.host != me.host || previous.pid != me.pid {
            return "taken over from \(previous.host) pid \(previous.pid); resumed at step \(step.number) (attempt \(attempt))"
        }
        return "resumed at step \(step.number) (attempt \(attempt))"
    }

    /// Throws ``LeaseLost`` (and stops the job) unless this agent still holds `attempt`.
    private func checkFence() throws {
        guard store.holdsLease(jobId: jobId, attempt: attempt) else {
            control.stop(.leaseLost, interruptNow: false)
            throw LeaseLost()
        }
    }

    /// Wins the right to conclude this attempt (``JobStore/claimConclusion(jobId:attempt:)``) or throws
    /// ``LeaseLost`` (and stops the job) when another agent took it over first.
    private func claimConclusion() throws {
        guard try store.claimConclusion(jobId: jobId, attempt: attempt) else {
            control.stop(.leaseLost, interruptNow: false)
            throw LeaseLost()
        }
    }

    private func rejectClaimed(code: String, message: String) throws {
        let kept = store.rejectedDirectory + "/" + name + ".\(jobId).json"
        _ = rename(directory + "/request.json", kept)
        var doc = StatusPublisher.existing(at: statusPath) ?? StatusDocument(request: name, state: .rejected)
        doc.error = .init(code: code, message: message, hint: "The file changed after it was validated; drop it again when complete.")
        doc.requestFile = kept
        doc.transition(to: .rejected, message: message)
        doc.advanceSequence()
        try AtomicFile.write(try doc.encoded(), to: statusPath, mode: settings.statusFileMode)
        _ = try? store.finish(jobId: jobId, name: name, state: .rejected, statusPath: statusPath)
        agent.metrics.detail.finished(jobId: jobId, state: .rejected, code: code, durationSeconds: nil)
        logger.error("request rejected", metadata: ["error.code": "\(code)", "error.message": "\(message)"])
    }

    private func record(_ doc: StatusDocument, step: String?, attempt: Int, message: String?, jobDirectory: String? = nil) {
        do {
            try agent.journal.record(
                .init(
                    jobId: jobId, name: name, sha256: doc.sha256, mous: doc.mous, requestId: doc.requestId, state: doc.state,
                    step: step ?? doc.step?.name, attempt: attempt, jobDirectory: jobDirectory ?? directory, statusPath: statusPath,
                    submittedAt: doc.submittedAt, startedAt: doc.startedAt, updatedAt: doc.updatedAt, finishedAt: doc.finishedAt,
                    errorCode: doc.error?.code, errorMessage: doc.error?.message),
                message: message)
        } catch {
            logger.error("cannot write the journal", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Idempotent re-submission

    /// Tests only: runs in ``linkIfDuplicate`` after the original's status was read and before this request's
    /// status is written — the moment at which the original may end.
    @TaskLocal static var linkRaceHook: (@Sendable () async -> Void)?

    /// Tests only: runs in ``conclude`` after the final status and the move to `finished/`, with the status path —
    /// the moment at which another host's stale `queued` may land.
    @TaskLocal static var concludedHook: (@Sendable (String) async -> Void)?

    /// Links this request to a live or recently succeeded one with identical content instead of running it.
    ///
    /// The original may end at any moment: its final status is written before its job directory moves to
    /// `finished/` and before it updates the requests linked to it. So after writing this request's status the
    /// original's status is read again; if it has ended, this request ends the same way here (if the original's
    /// update came first, this write would otherwise leave the linked request `running` forever).
    private func linkIfDuplicate(sha: String, request: RestoreRequest, checkpoint: JobCheckpoint) async throws -> Bool {
        let mine = JobStore.IndexEntry(jobId: jobId, name: name, state: .running, finishedAt: nil, statusPath: statusPath)
        guard let existing = try store.createIndexEntry(mine, sha256: sha) else { return false }
        let now = Date().timeIntervalSince1970
        let live = !existing.state.isTerminal && FileManager.default.fileExists(atPath: store.jobDirectory(existing.jobId))
        let recentSuccess = existing.state == .succeeded && (existing.finishedAt.map { now - $0 <= settings.resubmitWindowSeconds } ?? false)
        guard existing.jobId != jobId, existing.name != name || live, live || recentSuccess else {
            try store.writeIndexEntry(mine, sha256: sha)
            return false
        }
        if live {
            let links = store.jobDirectory(existing.jobId) + "/links"
            // Not with intermediate directories: when the original has just moved to finished/, this must not
            // recreate a job directory nobody reads (the re-check below catches that case).
            _ = mkdir(links, 0o755)
            _ = FileManager.default.createFile(atPath: links + "/" + name, contents: Data(statusPath.utf8))
        }
        // The status first, pointing at where the request will be kept, then the move: a kill in between leaves
        // the job in jobs/, and whoever resumes it links it again (idempotent) and finishes it. The other order
        // left `queued` forever.
        let finished = store.finishedDirectory + "/" + jobId
        let original = StatusPublisher.existing(at: existing.statusPath)
        var doc = StatusPublisher.existing(at: statusPath) ?? StatusDocument(request: name, state: .queued)
        doc.linkedTo = .init(request: existing.name, statusFile: existing.statusPath)
        doc.requestFile = finished + "/request.json"
        doc.sha256 = sha
        doc.mous = request.mous
        doc.requestId = request.requestId
        doc.result = original?.result
        doc.error = original?.error
        doc.transition(to: original?.state ?? (live ? .running : .succeeded), step: original?.step.flatMap { StepName(rawValue: $0.name) },
                       message: "identical to request \(existing.name); linked to its result instead of running again")
        if let hook = Self.linkRaceHook { await hook() }
        try claimConclusion()
        doc.advanceSequence()
        try AtomicFile.write(try doc.encoded(), to: statusPath, mode: settings.statusFileMode)
        if !doc.state.isTerminal, let ended = StatusPublisher.existing(at: existing.statusPath), ended.state.isTerminal {
            let current = StatusPublisher.existing(at: statusPath) ?? doc
            if !current.state.isTerminal {
                doc = current
                doc.result = ended.result
                doc.error = ended.error
                doc.transition(to: ended.state, step: nil, message: "the linked request \(existing.name) ended")
                doc.advanceSequence()
                try AtomicFile.write(try doc.encoded(), to: statusPath, mode: settings.statusFileMode)
            }
        }
        CrashPoint.hit("link-before-finish")
        _ = try store.finish(jobId: jobId, name: name, state: .succeeded, statusPath: statusPath)
        agent.metrics.add(\.linked)
        record(doc, step: nil, attempt: 0, message: "linked to \(existing.name)", jobDirectory: finished)
        logger.info("request linked to an identical one", metadata: ["linked.to": "\(existing.name)", "state": "\(doc.state.rawValue)"])
        return true
    }

    private func updateLinkedRequests(finishedDirectory: String, final: StatusDocument) {
        let links = finishedDirectory + "/links"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: links)) ?? [] {
            guard let data = FileManager.default.contents(atPath: links + "/" + entry) else { continue }
            let path = String(decoding: data, as: UTF8.self)
            guard var doc = StatusPublisher.existing(at: path) else { continue }
            doc.result = final.result
            doc.error = final.error
            doc.transition(to: final.state, step: nil, message: "the linked request \(name) ended")
            doc.advanceSequence()
            try? AtomicFile.write(try doc.encoded(), to: path, mode: settings.statusFileMode)
        }
    }

    fileprivate func spoolCancelPath() -> String { settings.spoolDirectory + "/" + name + ".cancel" }
    fileprivate func journalStep(_ step: StepName, attempt: Int, started: Bool, outcome: String = "completed") {
        if started {
            try? agent.journal.stepStarted(jobId: jobId, step: step.rawValue, attempt: attempt, at: Timestamp.now())
        } else {
            try? agent.journal.stepEnded(jobId: jobId, step: step.rawValue, attempt: attempt, at: Timestamp.now(), outcome: outcome)
        }
    }
    fileprivate var jobDirectoryPath: String { directory }
    fileprivate func fence() throws { try checkFence() }
    fileprivate func saveCheckpoint(_ c: JobCheckpoint) throws { try store.writeCheckpoint(c) }
}

/// Records step transitions durably before the pipeline moves on, and stops it when asked.
final class JobObserver: PipelineObserver, Sendable {
    private let runner: JobRunner
    private let state: Mutex<JobCheckpoint>
    private let publisher: StatusPublisher
    private let attempt: Int
    private let job: ExecutionJob

    init(runner: JobRunner, checkpoint: JobCheckpoint, publisher: StatusPublisher, attempt: Int, job: ExecutionJob) {
        self.runner = runner
        self.state = Mutex(checkpoint)
        self.publisher = publisher
        self.attempt = attempt
        self.job = job
    }

    var checkpoint: JobCheckpoint { state.withLock { $0 } }

    func stepWillStart(_ step: StepName) async throws {
        if access(runner.spoolCancelPath(), F_OK) == 0 {
            _ = rename(runner.spoolCancelPath(), runner.jobDirectoryPath + "/cancel")
        }
        // Also a cancel moved here before a crash: a resumed job honours it.
        if access(runner.jobDirectoryPath + "/cancel", F_OK) == 0 {
            runner.control.stop(.cancelRequested, interruptNow: false)
        }
        if runner.control.stopReason != nil { throw CancellationError() }
        do { try runner.fence() } catch { throw CancellationError() }
        runner.journalStep(step, attempt: attempt, started: true)
        runner.agent.metrics.detail.stepStarted(jobId: runner.jobId, step: step)
        try publisher.transition(to: .running, step: step)
    }

    func stepDidComplete(_ step: StepName) async throws {
        let snapshot = state.withLock { c -> JobCheckpoint in
            if !c.completedSteps.contains(step) { c.completedSteps.append(step) }
            return c
        }
        // The checkpoint is shared with whoever takes the job over: a stalled owner must not write it any more.
        do { try runner.fence() } catch { throw CancellationError() }
        try runner.saveCheckpoint(snapshot)
        runner.journalStep(step, attempt: attempt, started: false)
        runner.agent.metrics.detail.stepCompleted(jobId: runner.jobId, step: step)
        // Say which CASA will run as soon as it is chosen (step 1) and once the manifest is read (step 3).
        if step == .prepare || step == .calibration, let facts = runner.agent.executor.runningFacts(job), facts.casa != publisher.document.casa {
            try publisher.update { $0.record(casa: facts.casa, warning: facts.warnings.first) }
        }
    }
}


/// This agent no longer holds the attempt it runs (another agent took the job over): stop, write nothing.
struct LeaseLost: Error, CustomStringConvertible {
    var description: String { "the lease of this attempt is held by another agent now" }
}
