import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - Intake

extension SpoolAgent {
    /// Looks at the spool entries of one watcher batch (one `read(2)` of the inotify queue, or a rescan) with group
    /// commit: their `waiting`/`queued` status files are written and renamed one by one as before, but share one
    /// `fsync` of the spool directory at the end of the batch (one journal commit instead of one per request), and
    /// claims start only after that commit.
    ///
    /// Durability of `queued` (a status file that says `queued` survives a power cut): ``AtomicFile`` writes each
    /// status file's data back and waits for it before the rename; ``DirectorySyncGroup/commit()`` then forces the
    /// journal up to the last rename of the batch, and an ordered journal (ext4, XFS) commits every earlier rename
    /// with it. A status is visible a little earlier than it is durable (as with a single write, where the rename
    /// also precedes the directory `fsync`); a power cut in that window leaves the previous status (or none), never
    /// a torn one, and the request file itself still in the spool, untouched — nothing has been claimed before the
    /// commit — so the agent finds it again at start (rescan) and queues it again. Nothing is lost or run twice.
    func handle(entries: [String]) {
        let group = DirectorySyncGroup()
        intakeGroup = group
        for entry in entries { handle(entry: entry) }
        intakeGroup = nil
        do { try group.commit() } catch {
            logger.warning("cannot sync the spool directory", metadata: ["error": "\(error)"])
        }
        // A logged state is a durable one (README, "Durability of a status"): the batch's `queued` lines come now.
        let queued = queuedInBatch
        queuedInBatch = []
        for (name, sha) in queued { logQueued(name: name, sha256: sha) }
        if !queued.isEmpty { pump() }
    }

    private func logQueued(name: String, sha256: String) {
        logger.info(
            "request state changed", metadata: ["request.name": "\(name)", "state": "queued", "sha256": "\(sha256)"])
    }

    /// Looks at one spool entry named by the watcher (an event or a rescan).
    func handle(entry: String) {
        guard !draining else { return }
        switch SpoolNames.classify(entry) {
        case .ignored, .unrelated:
            return
        case .badRequestName(let reason):
            quarantineBadName(entry, reason: reason)
        case .cancel(let name):
            handleCancel(name: name, entry: entry)
        case .commitMarker(let name):
            // The request may have been waiting for its settle time: with the marker it need not.
            if pending[name] != nil || access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0 {
                examine(name: name)
            }
        case .request(let name):
            examine(name: name)
        }
    }

    private func quarantineBadName(_ entry: String, reason: String) {
        do {
            guard let kept = try store.quarantine(entry: entry, reason: reason, code: .invalidName) else { return }
            metrics.add(\.rejected)
            metrics.detail.finished(
                jobId: nil, state: .rejected, code: RestoreError.Code.invalidName.rawValue, durationSeconds: nil)
            logger.error(
                "request rejected",
                metadata: [
                    "entry": "\(SpoolNames.printable(entry))", "error.code": "invalidName", "reason": "\(reason)",
                    "kept": "\(kept)",
                ])
        } catch {
            logger.error(
                "cannot move a badly named request aside",
                metadata: ["entry": "\(SpoolNames.printable(entry))", "error": "\(error)"])
        }
    }

    func statusPath(_ name: String) -> String { settings.spoolDirectory + "/" + SpoolNames.statusFile(for: name) }

    /// Decides what to do with `NAME.json` now: wait, reject, queue or link to an earlier identical request.
    func examine(name: String) {
        let now = Date().timeIntervalSince1970
        if running[name] != nil {
            // Same name dropped again while the first one runs: look again once it has finished.
            return
        }
        let contents: SafeRequestFile.Contents?
        do {
            contents = try SafeRequestFile.read(
                directoryFD: spoolFD, name: name + ".json", maxBytes: settings.maxRequestBytes,
                allowedOwners: settings.allowedOwners)
        } catch {
            // `link(temp, final)` then `unlink(temp)` (how `submit` and Maildir-style writers publish a file without
            // replacing another) shows two links for a moment: a hard link is refused only once it has stayed one
            // for `hardLinkGraceSeconds`, whatever the settle time.
            if error.code == .hardLink {
                var file = pending[name] ?? PendingFile(firstSeen: now, identity: nil, stableSince: now)
                if now - file.firstSeen < Self.hardLinkGraceSeconds {
                    file.identity = nil
                    pending[name] = file
                    scheduleRecheck(name: name, at: min(now + 0.05, file.firstSeen + Self.hardLinkGraceSeconds))
                    return
                }
            }
            reject(name: name, code: error.code, message: error.message, hint: hint(forUnsafe: error.code))
            return
        }
        guard let contents else {
            pending[name] = nil
            queue.removeAll { $0.name == name }
            return
        }
        var file = pending[name] ?? PendingFile(firstSeen: now, identity: nil, stableSince: now)
        if file.identity != contents.identity {
            file.identity = contents.identity
            file.stableSince = now
        }
        // With a commit marker (`NAME.json.ok`) the dropper vouches that the file is complete: no settle time.
        let committed = faccessat(spoolFD, SpoolNames.commitMarker(for: name), F_OK, AT_SYMLINK_NOFOLLOW) == 0
        let stable = committed || now - file.stableSince >= settings.settleSeconds
        do {
            // The one parse of the request: the claimed job carries it (``AcceptedRequest``).
            let accepted = try AcceptedRequest.parse(contents.bytes, identity: contents.identity)
            if stable {
                pending[name] = nil
                if let refusal = Self.casaRefusal(accepted.parsed.request, settings: settings) {
                    reject(name: name, code: refusal.code, message: refusal.message, hint: refusal.hint)
                    return
                }
                accept(name: name, accepted: accepted, firstSeen: file.firstSeen, owner: contents.identity.owner)
            } else {
                pending[name] = file
                noteWaiting(
                    name: name, file: file,
                    why: "waiting until the file has been unchanged for \(settings.settleSeconds) s")
                scheduleRecheck(name: name, at: file.stableSince + settings.settleSeconds)
            }
        } catch {
            let age = now - file.firstSeen
            if error.truncated && age < settings.incompleteTimeoutSeconds {
                pending[name] = file
                noteWaiting(name: name, file: file, why: "incomplete: \(error.message)")
                // Re-examined on the next close/rename event, a rescan, or when the timeout is due.
                scheduleRecheck(name: name, at: file.firstSeen + settings.incompleteTimeoutSeconds)
            } else if error.truncated {
                reject(
                    name: name, code: .incompleteRequest,
                    message:
                        "the request was still not one complete JSON object after \(Int(settings.incompleteTimeoutSeconds)) s: \(error.message)",
                    hint:
                        "Write the file under a temporary name (name.json.part or .name.json) and rename it when complete; an interrupted transfer leaves a truncated file."
                )
            } else if stable {
                reject(
                    name: name, code: error.code, message: error.message,
                    hint:
                        "Fix the request and drop it again; `dropbox-agent validate FILE` checks a request without running it."
                )
            } else {
                pending[name] = file
                noteWaiting(name: name, file: file, why: "not valid yet; checking again when the file is stable")
                scheduleRecheck(name: name, at: file.stableSince + settings.settleSeconds)
            }
        }
    }

    /// Why the CASA installation a request names (`casa`, `casaHome`) cannot be used, or nil: refused at intake,
    /// before anything is claimed or downloaded.
    static func casaRefusal(_ request: RestoreRequest, settings: Settings) -> RestoreError? {
        guard let choice = request.casa, let list = settings.casaInstallations else { return nil }
        do { _ = try CASASelection.requestedInstallation(choice, installations: list()) } catch { return error }
        return nil
    }

    private func hint(forUnsafe code: RestoreError.Code) -> String {
        switch code {
        case .symlink: "Copy the request file into the spool instead of linking it."
        case .hardLink: "Copy the request instead of hard-linking it."
        case .tooLarge: "A request is a small JSON object; the limit is spool.maxRequestBytes."
        case .ownerNotAllowed: "Drop requests as an allowed user, or add the user to spool.allowedOwners."
        default: "Drop a regular file named NAME.json."
        }
    }

    private func scheduleRecheck(name: String, at deadline: Double) {
        guard var file = pending[name], !file.recheckScheduled else { return }
        file.recheckScheduled = true
        pending[name] = file
        let delay = max(0.01, deadline - Date().timeIntervalSince1970) + 0.01
        Task { [weak self] in
            try? await Task.sleep(for: .seconds(delay))
            await self?.recheck(name: name)
        }
    }

    private func recheck(name: String) {
        guard var file = pending[name] else { return }
        file.recheckScheduled = false
        pending[name] = file
        examine(name: name)
    }

    /// Writes `waiting` once, without overwriting a status another agent may already have moved on (the request's
    /// record in the job store says; the status file is only written).
    private func noteWaiting(name: String, file: PendingFile, why: String) {
        var doc = StatusDocument(request: name, state: .waiting)
        doc.submittedAt = Timestamp.string(Date(timeIntervalSince1970: file.firstSeen))
        doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
        doc.transition(to: .waiting, message: why)
        doc.progress = .init(message: why)
        do {
            try whileInSpool(name + ".json") { stillInSpool in
                let existing = records.read(name)
                if existing?.state == .waiting { return }
                doc.sequence = existing?.sequence  // a new request of the same name continues the file's count
                if existing?.state.isTerminal == true {
                    // An earlier request of the same name finished; this is a new one (still in the spool, so
                    // nobody has claimed it: the lock makes sure of that).
                    doc.advanceSequence()
                    try records.write(doc, name: name, group: intakeGroup, if: stillInSpool)
                } else {
                    doc.advanceSequence()
                    try records.create(doc, name: name, group: intakeGroup)
                }
            }
        } catch {
            logger.warning("cannot write the status file", metadata: ["request.name": "\(name)", "error": "\(error)"])
        }
    }

    /// Moves a bad request aside (never deleted) and says why in its status file.
    func reject(name: String, code: RestoreError.Code, message: String, hint: String?) {
        pending[name] = nil
        queue.removeAll { $0.name == name }
        do {
            guard let kept = try store.quarantine(entry: name + ".json", reason: message, code: code) else { return }
            _ = rename(settings.spoolDirectory + "/" + SpoolNames.commitMarker(for: name), kept + ".ok")
            metrics.add(\.rejected)
            metrics.detail.finished(jobId: nil, state: .rejected, code: code.rawValue, durationSeconds: nil)
            let previous = records.read(name)
            var doc =
                previous.flatMap { $0.state.isTerminal ? nil : $0 } ?? StatusDocument(request: name, state: .rejected)
            doc.sequence = previous?.sequence
            doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
            doc.error = .init(code: code.rawValue, message: message, hint: hint)
            doc.requestFile = kept
            doc.transition(to: .rejected, message: message)
            doc.advanceSequence()
            try records.write(doc, name: name)
            let jobId = "rejected:\(name):\(doc.updatedAt)"
            try? journal.record(doc, jobId: jobId, attempt: 0, statusPath: statusPath(name), message: message)
            logger.error(
                "request rejected",
                metadata: [
                    "request.name": "\(name)", "error.code": "\(code)", "error.message": "\(message)",
                    "kept": "\(kept)",
                ])
        } catch {
            logger.error("cannot reject a request", metadata: ["request.name": "\(name)", "error": "\(error)"])
        }
    }

    private func accept(name: String, accepted: AcceptedRequest, firstSeen: Double, owner: uid_t) {
        let parsed = accepted.parsed
        let sha = accepted.sha256
        if !parsed.ignoredFields.isEmpty {
            logger.notice(
                "ignored fields of a workflow event",
                metadata: ["request.name": "\(name)", "fields": "\(parsed.ignoredFields.joined(separator: ", "))"])
        }
        if queue.contains(where: { $0.name == name }) { return }
        let queued = QueuedRequest(name: name, firstSeen: firstSeen, request: accepted, owner: owner)
        // Oldest first; a new request is nearly always the youngest (no re-sort of a long queue per request).
        if let last = queue.last, last.firstSeen > firstSeen {
            queue.insert(queued, at: queue.firstIndex { $0.firstSeen > firstSeen } ?? queue.endIndex)
        } else {
            queue.append(queued)
        }
        do {
            // Under the entry's lock and only while the file is still in the spool: a claim (which takes the same
            // lock around its rename) can never be followed by this `queued`, so another agent's `running` or
            // terminal status is never overwritten. One read of the request's record decides, and keeps `waiting`'s history.
            try whileInSpool(name + ".json") { stillInSpool in
                let existing = records.read(name)
                if let existing, ![.waiting, .queued].contains(existing.state), !existing.state.isTerminal {
                    return  // another agent has it
                }
                var doc =
                    existing.flatMap { $0.state == .waiting ? $0 : nil }
                    ?? StatusDocument(request: name, state: .queued)
                doc.sequence = existing?.sequence
                doc.submittedAt = doc.submittedAt ?? Timestamp.string(Date(timeIntervalSince1970: firstSeen))
                doc.requestId = parsed.request.requestId
                doc.mous = parsed.request.mous
                doc.sha256 = sha
                doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
                if !parsed.ignoredFields.isEmpty {
                    doc.warnings = ["ignored event fields: " + parsed.ignoredFields.joined(separator: ", ")]
                }
                doc.transition(to: .queued, message: "complete and valid; waiting for a free slot")
                doc.advanceSequence()
                // The entry again right before each rename: across hosts the lock orders nothing, and a claim (and
                // with a fast failure, the conclusion) by another host may have happened since the check above.
                // That leaves only the renames' own instants; ``JobRunner`` repairs a status replaced in them.
                // In a watcher batch the directory fsyncs come once, at its end (``handle(entries:)``).
                try records.write(doc, name: name, group: intakeGroup, if: stillInSpool)
            }
        } catch {
            logger.warning("cannot write the status file", metadata: ["request.name": "\(name)", "error": "\(error)"])
        }
        // In a batch, the log line and the claims wait for its commit: a logged or claimed `queued` is durable.
        if intakeGroup != nil {
            queuedInBatch.append((name, sha))
        } else {
            logQueued(name: name, sha256: sha)
            pump()
        }
    }

    /// Runs `body` holding an exclusive `flock(2)` on the spool entry, if the entry is still in the spool.
    /// ``JobStore/claim(name:)`` takes the same lock around its rename, so a status written here can never
    /// land after the claim of the same file by another agent *of this kernel*. Across hosts `flock` gives no
    /// such order (sshfs: locks are per mount; NFS: only with the lock daemon); nothing about exactly-once depends
    /// on it. Across hosts the claimer repairs a status another host overwrote around its claim (``JobRunner``).
    /// `body` gets a check that the entry is still the one in the spool, for the instant before a status rename.
    private func whileInSpool(_ entry: String, _ body: (_ stillInSpool: () -> Bool) throws -> Void) throws {
        let fd = openat(spoolFD, entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { return }
        var opened = stat()
        var listed = stat()
        guard fstat(fd, &opened) == 0, fstatat(spoolFD, entry, &listed, AT_SYMLINK_NOFOLLOW) == 0,
            opened.st_ino == listed.st_ino, opened.st_dev == listed.st_dev
        else { return }
        let spoolFD = self.spoolFD
        try body {
            var now = stat()
            return fstatat(spoolFD, entry, &now, AT_SYMLINK_NOFOLLOW) == 0 && now.st_ino == opened.st_ino
                && now.st_dev == opened.st_dev
        }
    }
}
