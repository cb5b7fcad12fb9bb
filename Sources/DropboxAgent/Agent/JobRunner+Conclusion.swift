import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - Ending

extension JobRunner {
    func conclude(
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
            if e.isTransient, try scheduleRetry(after: e, checkpoint: checkpoint, publisher: publisher, job: job) {
                return
            }
            finalState = .failed
            error = e
            if e.isTransient, let since = checkpoint.transientSince {
                error?.message +=
                    " (transient failures since \(Timestamp.string(Date(timeIntervalSince1970: since))); retried until archive.retryHorizonSeconds = \(Int(settings.transientRetryHorizon)) s)"
            }
        case .cancelled(let step):
            switch control.stopReason {
            case .shutdown:
                let next = StepName.allCases.first { !checkpoint.completedSteps.contains($0) }
                try publisher.transition(
                    to: .queued,
                    message: "the agent stopped; the request resumes at step \(next?.number ?? 6) when an agent starts"
                ) { doc in
                    doc.agent = nil
                }
                _ = try store.renewLease(jobId: jobId, attempt: attempt, released: true)
                record(
                    publisher.document, step: step?.rawValue, attempt: job.attempt, message: "checkpointed at shutdown")
                logger.notice(
                    "request checkpointed for shutdown",
                    metadata: ["completed.steps": "\(checkpoint.completedSteps.map(\.rawValue))"])
                return
            case .leaseLost:
                logger.error(
                    "lease lost to another agent; stopped without writing anything more",
                    metadata: ["attempt": .stringConvertible(attempt)])
                return
            case .cancelRequested, nil:
                finalState = .cancelled
                error = RestoreError(
                    .cancelled, "cancelled at step \(step?.number ?? 0) \(step?.rawValue ?? "")", step: step)
            }
        }

        // Fencing: an agent that lost the lease (stalled, then taken over) mails and concludes nothing. Claiming the
        // conclusion and being taken over exclude each other (both are the exclusive link of the next attempt).
        try claimConclusion()
        // Notify before the final status, so the status can say whether the mail went out.
        var notifications: [StatusDocument.Notification] = publisher.document.notifications ?? []
        if settings.notifyOn.contains(finalState) && !checkpoint.notified,
            let earlier = try store.recordNotificationHandOff(jobId: jobId), earlier != AgentIdentity.current
        {
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
            Bookkeeping.noteWrite()
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
        try await completeConclusion(
            publisher.document, step: error?.step?.rawValue, job: job, sha: sha, startedAt: checkpoint.startedAt,
            facts: result.facts)
        // Across hosts nothing orders a `queued` that another host wrote in the instant before our claim against our
        // statuses (the spool-entry lock is per kernel): if such a stale one replaced our final record, write ours
        // again. Stale means an older sequence; a new request of the same name continues from ours (higher).
        if let onDisk = records.read(name), !onDisk.state.isTerminal,
            (onDisk.sequence ?? 0) < (publisher.document.sequence ?? 0)
        {
            logger.warning(
                "a status another agent wrote around the claim had replaced the final one; writing it again",
                metadata: ["replaced.state": "\(onDisk.state.rawValue)"])
            try? publisher.update { _ in }
        }
    }

    /// What follows the terminal status (written by this attempt, or by an earlier one that died right after
    /// writing it): the idempotency index, the move to `finished/`, the journal row, metrics, clean-up of the
    /// working area and the linked requests.
    func completeConclusion(
        _ final: StatusDocument, step: String?, job: ExecutionJob, sha: String, startedAt: String?,
        facts: [String: String]
    ) async throws {
        let finalState = final.state
        let finished = store.finishedDirectory + "/" + jobId
        CrashPoint.hit("conclude-after-status")
        try? store.writeIndexEntry(
            .init(
                jobId: jobId, name: name, state: finalState, finishedAt: Date().timeIntervalSince1970,
                statusPath: statusPath), sha256: sha)
        _ = try store.finish(jobId: jobId, name: name, state: finalState, statusPath: statusPath)
        record(
            final, step: step, attempt: job.attempt, message: final.error?.message ?? finalState.rawValue,
            jobDirectory: finished)
        agent.metrics.add(finalState == .succeeded ? \.succeeded : finalState == .failed ? \.failed : \.cancelled)
        agent.metrics.detail.finished(
            jobId: jobId, state: finalState, code: final.error?.code,
            durationSeconds: startedAt.flatMap(Timestamp.date).map { Date().timeIntervalSince($0) })
        await agent.executor.cleanUp(job, succeeded: finalState == .succeeded)
        if let area = final.workingArea, !FileManager.default.fileExists(atPath: area) {
            // Read-modify-write of the record (not the publisher's copy), under the lock the mail queue takes too: the
            // queue may already have written the notifications' outcome.
            try records.modifyConcluded(name: name, ifRequestFile: finished + "/request.json") { doc in
                doc.workingArea = nil
                doc.logs = nil  // they lived in the working area; the delivery keeps the CASA logs
            }
        }
        await updateLinkedRequests(finishedDirectory: finished, final: final, facts: facts)
        if let hook = Self.concludedHook { await hook(statusPath) }
    }

    /// A transient failure (archive 5xx or unreachable, delivery area unavailable) is retried later with backoff
    /// while within `archive.retryHorizonSeconds` of the first one: the job is checkpointed, its lease released
    /// and `retryAt` set, so that this or any agent resumes it at the failed step then; the status says
    /// `waiting for archive, retry at …`. No slot is held while waiting.
    ///
    /// - Returns: false when the horizon is exhausted (the request fails).
    private func scheduleRetry(
        after e: RestoreError, checkpoint: JobCheckpoint, publisher: StatusPublisher, job: ExecutionJob
    ) throws -> Bool {
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
        Bookkeeping.noteWrite()
        try store.writeCheckpoint(checkpoint)
        let when = Timestamp.string(Date(timeIntervalSince1970: now + delay))
        let archiveStep =
            e.code != DiskSpace.code && e.step.map { [.prepare, .rawdata, .calibration].contains($0) } ?? true
        let message =
            archiveStep
            ? "waiting for archive, retry at \(when): \(e.message)"
            : "transient failure at step \(e.step?.number ?? 0) \(e.step?.rawValue ?? ""), retry at \(when): \(e.message)"
        try publisher.transition(to: .queued, message: message) { doc in
            doc.agent = nil
            doc.progress = .init(message: message)
        }
        _ = try store.renewLease(jobId: jobId, attempt: attempt, released: true)
        record(publisher.document, step: e.step?.rawValue, attempt: job.attempt, message: message)
        logger.warning(
            "transient failure; retrying later",
            metadata: [
                "error.code": "\(e.code.rawValue)", "retry.at": "\(when)", "retry": .stringConvertible(retries + 1),
            ])
        return true
    }
}
