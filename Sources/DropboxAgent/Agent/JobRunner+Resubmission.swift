import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - Idempotent re-submission

extension JobRunner {
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
    /// original's record is read again; if it has ended, this request ends the same way here (if the original's
    /// update came first, this write would otherwise leave the linked request `running` forever).
    func linkIfDuplicate(sha: String, request: RestoreRequest, checkpoint: JobCheckpoint) async throws -> Bool {
        let mine = JobStore.IndexEntry(
            jobId: jobId, name: name, state: .running, finishedAt: nil, statusPath: statusPath)
        guard let existing = try store.createIndexEntry(mine, sha256: sha) else { return false }
        let now = Date().timeIntervalSince1970
        let live =
            !existing.state.isTerminal && FileManager.default.fileExists(atPath: store.jobDirectory(existing.jobId))
        let recentSuccess =
            existing.state == .succeeded
            && (existing.finishedAt.map { now - $0 <= settings.resubmitWindowSeconds } ?? false)
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
        let original = records.read(existing.name)
        var doc = records.read(name) ?? StatusDocument(request: name, state: .queued)
        doc.linkedTo = .init(request: existing.name, statusFile: existing.statusPath)
        doc.requestFile = finished + "/request.json"
        doc.sha256 = sha
        doc.mous = request.mous
        doc.requestId = request.requestId
        doc.result = original?.result
        doc.error = original?.error
        doc.transition(
            to: original?.state ?? (live ? .running : .succeeded),
            step: original?.step.flatMap { StepName(rawValue: $0.name) },
            message: "identical to request \(existing.name); linked to its result instead of running again")
        if let hook = Self.linkRaceHook { await hook() }
        try claimConclusion()
        doc.advanceSequence()
        try records.write(doc, name: name)
        if !doc.state.isTerminal, let ended = records.read(existing.name), ended.state.isTerminal {
            let current = records.read(name) ?? doc
            if !current.state.isTerminal {
                doc = current
                doc.result = ended.result
                doc.error = ended.error
                doc.transition(to: ended.state, step: nil, message: "the linked request \(existing.name) ended")
                doc.advanceSequence()
                try records.write(doc, name: name)
            }
        }
        if doc.state == .succeeded {
            agent.executor.linkedToDelivery(jobId: jobId, statusPath: statusPath, result: doc.result, logger: logger)
        }
        if doc.state.isTerminal {
            // The re-submission has ended with its original: its own recipients are told (once: the queue keys by job).
            try await mailLinked(
                doc, request: request, facts: ["mous": request.mous], jobId: jobId, statusPath: statusPath,
                jobDirectory: finished)
        }
        CrashPoint.hit("link-before-finish")
        _ = try store.finish(jobId: jobId, name: name, state: .succeeded, statusPath: statusPath)
        agent.metrics.add(\.linked)
        record(doc, step: nil, attempt: 0, message: "linked to \(existing.name)", jobDirectory: finished)
        logger.info(
            "request linked to an identical one",
            metadata: ["linked.to": "\(existing.name)", "state": "\(doc.state.rawValue)"])
        return true
    }

    func updateLinkedRequests(finishedDirectory: String, final: StatusDocument, facts: [String: String] = [:]) async {
        let links = finishedDirectory + "/links"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: links)) ?? [] {
            guard let data = FileManager.default.contents(atPath: links + "/" + entry) else { continue }
            let path = String(decoding: data, as: UTF8.self)
            let linkedName = StatusRecords.name(ofOutput: path)
            guard var doc = records.read(linkedName) else { continue }
            let wasTerminal = doc.state.isTerminal
            doc.result = final.result
            doc.error = final.error
            doc.transition(to: final.state, step: nil, message: "the linked request \(name) ended")
            doc.advanceSequence()
            _ = try? records.write(doc, name: linkedName)
            if !wasTerminal, final.state == .succeeded, let requestFile = doc.requestFile {
                // Its delivery is the original's: it expires with it.
                let linkedJob = PathString.lastComponent(PathString.deletingLastComponent(requestFile))
                agent.executor.linkedToDelivery(
                    jobId: linkedJob, statusPath: path, result: final.result, logger: logger)
            }
            // The linked request's own recipients, from its own request file (kept in finished/<its job>/), parsed
            // like every claimed copy.
            guard !wasTerminal, let requestFile = doc.requestFile,
                case .accepted(let accepted)? = try? AcceptedRequest.load(claimedCopy: requestFile)
            else { continue }
            let parsed = accepted.parsed
            let jobDirectory = PathString.deletingLastComponent(requestFile)
            var linkedFacts = facts
            linkedFacts["mous"] = parsed.request.mous
            try? await mailLinked(
                doc, request: parsed.request, facts: linkedFacts, jobId: PathString.lastComponent(jobDirectory),
                statusPath: path,
                jobDirectory: jobDirectory)
        }
    }

    /// Queues the mail of a linked request that has ended, to its own recipients, and records it in its status.
    func mailLinked(
        _ doc: StatusDocument, request: RestoreRequest, facts: [String: String], jobId: String, statusPath: String,
        jobDirectory: String
    ) async throws {
        guard settings.notifyOn.contains(doc.state), !request.email.isEmpty || doc.state != .succeeded else { return }
        let notes = await agent.notifier.enqueue(
            doc, request: request, facts: facts, id: jobId, statusPath: statusPath, jobDirectory: jobDirectory)
        guard !notes.isEmpty else { return }
        try records.modifyConcluded(
            name: StatusRecords.name(ofOutput: statusPath), ifRequestFile: jobDirectory + "/request.json"
        ) { current in
            if current.notifications == nil { current.notifications = notes }
        }
    }
}
