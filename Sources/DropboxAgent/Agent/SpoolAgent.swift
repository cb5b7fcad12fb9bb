import Delivery
import Foundation
import Logging
import RestoreSteps

/// The agent: takes requests from the spool, claims them and runs them with bounded parallelism.
///
/// All decisions about spool entries happen on this actor, one at a time; the restores themselves run in
/// their own tasks (``JobRunner``) and report back when they end.
///
/// The actor's sections make short blocking calls — `flock` on a spool entry (a same-host ordering aid, see
/// ``whileInSpool(_:_:)``), the SQLite journal
/// (`synchronous=FULL`), fsynced status and lease files, claims by `rename` — so it runs on a thread of its own
/// (``DedicatedThreadExecutor``), never on the cooperative pool; anything long (garbage collection of finished
/// jobs) goes to ``BlockingWork``.
actor SpoolAgent {
    /// One thread for every agent of the process: each isolated section is a bounded moment.
    private static let isolationThread = DedicatedThreadExecutor(name: "spool-agent")
    nonisolated var unownedExecutor: UnownedSerialExecutor { Self.isolationThread.asUnownedSerialExecutor() }

    /// The settings the agent works with, resolved from the configuration.
    struct Settings: Sendable {
        var spoolDirectory: String
        var settleSeconds: Double
        var incompleteTimeoutSeconds: Double
        var maxRequestBytes: Int
        var allowedOwners: Set<uid_t>?
        var maxConcurrentRestores: Int
        /// At most this many restores of one dropper (file owner) at once; 0 means no per-dropper bound.
        var maxConcurrentPerDropper: Int = 0
        var leaseSeconds: Double
        var maxAttempts: Int
        var resubmitWindowSeconds: Double
        var shutdownGraceSeconds: Double
        var statusFileMode: mode_t
        var restoreDirectory: String
        var notifyOn: Set<RequestState>
        var defaultDeliveryFormat: RestoreRequest.DeliveryFormat
        /// `archive.retryHorizonSeconds` / `retryInitialSeconds`: transient failures are retried later, with
        /// backoff, this long after the first.
        var transientRetryHorizon: Double = 14400
        var transientRetryInitial: Double = 30
        /// The CASA installations a request may name (`casa`, event `casaHome`), listed when a request names one;
        /// nil: not checked at intake (planning still refuses an unknown one).
        var casaInstallations: (@Sendable () -> [CASAInstallation])? = nil
    }

    /// A file seen in the spool that is not yet complete (or not yet stable).
    struct PendingFile {
        var firstSeen: Double
        var identity: FileIdentity?
        var stableSince: Double
        var recheckScheduled = false
    }

    /// A complete, valid request waiting for a free slot (still in the spool, unclaimed).
    struct QueuedRequest {
        var name: String
        var firstSeen: Double
        var sha256: String
        /// The uid that dropped it (the file's owner): per-dropper concurrency is bounded on it.
        var owner: uid_t
    }

    struct RunningJob {
        var jobId: String
        var control: JobControl
        /// The attempt this agent holds: the fencing token its lease renewals compare against.
        var attempt: Int
        /// The dropper's uid (nil for a job resumed from another run: its file has already left the spool).
        var owner: uid_t?
    }

    /// How long a request with a second hard link may wait for it to go away (link-then-unlink publishers).
    static let hardLinkGraceSeconds = 2.0

    let settings: Settings
    let store: JobStore
    let journal: Journal
    let executor: any RestoreExecutor
    let notifier: any Notifier
    let logger: Logger
    let metrics = AgentMetrics()

    private let spoolFD: Int32
    private var pending: [String: PendingFile] = [:]
    private var queue: [QueuedRequest] = []
    private var running: [String: RunningJob] = [:]
    private var draining = false
    private var finishedWaiters: [CheckedContinuation<Void, Never>] = []

    init(settings: Settings, store: JobStore, journal: Journal, executor: any RestoreExecutor, notifier: any Notifier, logger: Logger) throws {
        self.settings = settings
        self.store = store
        self.journal = journal
        self.executor = executor
        self.notifier = notifier
        self.logger = logger
        try store.prepare()
        let fd = open(settings.spoolDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: settings.spoolDirectory, errno: errno) }
        spoolFD = fd
    }

    deinit { close(spoolFD) }

    var runningCount: Int { running.count }
    var queuedCount: Int { queue.count }
    var pendingCount: Int { pending.count }

    // MARK: - Intake

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
            if pending[name] != nil || access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0 { examine(name: name) }
        case .request(let name):
            examine(name: name)
        }
    }

    private func quarantineBadName(_ entry: String, reason: String) {
        do {
            guard let kept = try store.quarantine(entry: entry, reason: reason, code: "invalidName") else { return }
            metrics.add(\.rejected)
            metrics.detail.finished(jobId: nil, state: .rejected, code: "invalidName", durationSeconds: nil)
            logger.error("request rejected", metadata: ["entry": "\(SpoolNames.printable(entry))", "error.code": "invalidName", "reason": "\(reason)", "kept": "\(kept)"])
        } catch {
            logger.error("cannot move a badly named request aside", metadata: ["entry": "\(SpoolNames.printable(entry))", "error": "\(error)"])
        }
    }

    private func statusPath(_ name: String) -> String { settings.spoolDirectory + "/" + SpoolNames.statusFile(for: name) }

    /// Decides what to do with `NAME.json` now: wait, reject, queue or link to an earlier identical request.
    func examine(name: String) {
        let now = Date().timeIntervalSince1970
        if running[name] != nil {
            // Same name dropped again while the first one runs: look again once it has finished.
            return
        }
        let contents: SafeRequestFile.Contents?
        do {
            contents = try SafeRequestFile.read(directoryFD: spoolFD, name: name + ".json", maxBytes: settings.maxRequestBytes, allowedOwners: settings.allowedOwners)
        } catch {
            // `link(temp, final)` then `unlink(temp)` (how `submit` and Maildir-style writers publish a file without
            // replacing another) shows two links for a moment: a hard link is refused only once it has stayed one
            // for `hardLinkGraceSeconds`, whatever the settle time.
            if error.code == "hardLink" {
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
            let parsed = try RequestParser.parse(contents.bytes)
            if stable {
                pending[name] = nil
                if let refusal = Self.casaRefusal(parsed.request, settings: settings) {
                    reject(name: name, code: refusal.code.rawValue, message: refusal.message, hint: refusal.hint)
                    return
                }
                accept(name: name, parsed: parsed, bytes: contents.bytes, firstSeen: file.firstSeen, owner: contents.identity.owner)
            } else {
                pending[name] = file
                noteWaiting(name: name, file: file, why: "waiting until the file has been unchanged for \(settings.settleSeconds) s")
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
                reject(name: name, code: "incompleteRequest",
                       message: "the request was still not one complete JSON object after \(Int(settings.incompleteTimeoutSeconds)) s: \(error.message)",
                       hint: "Write the file under a temporary name (name.json.part or .name.json) and rename it when complete; an interrupted transfer leaves a truncated file.")
            } else if stable {
                reject(name: name, code: error.code, message: error.message, hint: "Fix the request and drop it again; `dropbox-agent validate FILE` checks a request without running it.")
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

    private func hint(forUnsafe code: String) -> String {
        switch code {
        case "symlink": "Copy the request file into the spool instead of linking it."
        case "hardLink": "Copy the request instead of hard-linking it."
        case "tooLarge": "A request is a small JSON object; the limit is spool.maxRequestBytes."
        case "ownerNotAllowed": "Drop requests as an allowed user, or add the user to spool.allowedOwners."
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

    /// Writes `waiting` once, without overwriting a status another agent may already have moved on.
    private func noteWaiting(name: String, file: PendingFile, why: String) {
        var doc = StatusDocument(request: name, state: .waiting)
        doc.submittedAt = Timestamp.string(Date(timeIntervalSince1970: file.firstSeen))
        doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
        doc.transition(to: .waiting, message: why)
        doc.progress = .init(message: why)
        do {
            try whileInSpool(name + ".json") {
                let existing = StatusPublisher.existing(at: statusPath(name))
                if existing?.state == .waiting { return }
                doc.sequence = existing?.sequence  // a new request of the same name continues the file's count
                if existing?.state.isTerminal == true {
                    // An earlier request of the same name finished; this is a new one (still in the spool, so
                    // nobody has claimed it: the lock makes sure of that).
                    doc.advanceSequence()
                    try AtomicFile.write(try doc.encoded(), to: statusPath(name), mode: settings.statusFileMode)
                } else {
                    doc.advanceSequence()
                    try AtomicFile.create(try doc.encoded(), at: statusPath(name), mode: settings.statusFileMode)
                }
            }
        } catch {
            logger.warning("cannot write the status file", metadata: ["request.name": "\(name)", "error": "\(error)"])
        }
    }

    /// Moves a bad request aside (never deleted) and says why in its status file.
    func reject(name: String, code: String, message: String, hint: String?) {
        pending[name] = nil
        queue.removeAll { $0.name == name }
        do {
            guard let kept = try store.quarantine(entry: name + ".json", reason: message, code: code) else { return }
            _ = rename(settings.spoolDirectory + "/" + SpoolNames.commitMarker(for: name), kept + ".ok")
            metrics.add(\.rejected)
            metrics.detail.finished(jobId: nil, state: .rejected, code: code, durationSeconds: nil)
            let previous = StatusPublisher.existing(at: statusPath(name))
            var doc = previous.flatMap { $0.state.isTerminal ? nil : $0 } ?? StatusDocument(request: name, state: .rejected)
            doc.sequence = previous?.sequence
            doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
            doc.error = .init(code: code, message: message, hint: hint)
            doc.requestFile = kept
            doc.transition(to: .rejected, message: message)
            doc.advanceSequence()
            try AtomicFile.write(try doc.encoded(), to: statusPath(name), mode: settings.statusFileMode)
            let jobId = "rejected:\(name):\(doc.updatedAt)"
            try? journal.record(.init(jobId: jobId, name: name, state: .rejected, attempt: 0, statusPath: statusPath(name), updatedAt: doc.updatedAt, finishedAt: doc.updatedAt, errorCode: code, errorMessage: message), message: message)
            logger.error("request rejected", metadata: ["request.name": "\(name)", "error.code": "\(code)", "error.message": "\(message)", "kept": "\(kept)"])
        } catch {
            logger.error("cannot reject a request", metadata: ["request.name": "\(name)", "error": "\(error)"])
        }
    }

    private func accept(name: String, parsed: ParsedRequest, bytes: [UInt8], firstSeen: Double, owner: uid_t) {
        let sha = RequestDigest.hex(bytes)
        if !parsed.ignoredFields.isEmpty {
            logger.notice("ignored fields of a workflow event", metadata: ["request.name": "\(name)", "fields": "\(parsed.ignoredFields.joined(separator: ", "))"])
        }
        if queue.contains(where: { $0.name == name }) { return }
        queue.append(QueuedRequest(name: name, firstSeen: firstSeen, sha256: sha, owner: owner))
        queue.sort { $0.firstSeen < $1.firstSeen }
        do {
            // Under the entry's lock and only while the file is still in the spool: a claim (which takes the same
            // lock around its rename) can never be followed by this `queued`, so another agent's `running` or
            // terminal status is never overwritten. One read of the status decides, and keeps `waiting`'s history.
            try whileInSpool(name + ".json") {
                let existing = StatusPublisher.existing(at: statusPath(name))
                if let existing, ![.waiting, .queued].contains(existing.state), !existing.state.isTerminal {
                    return  // another agent has it
                }
                var doc = existing.flatMap { $0.state == .waiting ? $0 : nil } ?? StatusDocument(request: name, state: .queued)
                doc.sequence = existing?.sequence
                doc.submittedAt = doc.submittedAt ?? Timestamp.string(Date(timeIntervalSince1970: firstSeen))
                doc.requestId = parsed.request.requestId
                doc.mous = parsed.request.mous
                doc.sha256 = sha
                doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
                if !parsed.ignoredFields.isEmpty { doc.warnings = ["ignored event fields: " + parsed.ignoredFields.joined(separator: ", ")] }
                doc.transition(to: .queued, message: "complete and valid; waiting for a free slot")
                doc.advanceSequence()
                try AtomicFile.write(try doc.encoded(), to: statusPath(name), mode: settings.statusFileMode)
            }
        } catch {
            logger.warning("cannot write the status file", metadata: ["request.name": "\(name)", "error": "\(error)"])
        }
        logger.info("request state changed", metadata: ["request.name": "\(name)", "state": "queued", "sha256": "\(sha)"])
        DashboardTrigger.poke()
        pump()
    }

    /// Runs `body` holding an exclusive `flock(2)` on the spool entry, if the entry is still in the spool.
    /// ``JobStore/claim(name:)`` takes the same lock around its rename, so a status written here can never
    /// land after the claim of the same file by another agent *of this kernel*. Across hosts `flock` gives no
    /// such order (sshfs: locks are per mount; NFS: only with the lock daemon); nothing about exactly-once depends
    /// on it. Across hosts the claimer repairs a status another host overwrote around its claim (``JobRunner``).
    private func whileInSpool(_ entry: String, _ body: () throws -> Void) throws {
        let fd = openat(spoolFD, entry, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { return }
        var opened = stat(), listed = stat()
        guard fstat(fd, &opened) == 0, fstatat(spoolFD, entry, &listed, AT_SYMLINK_NOFOLLOW) == 0,
            opened.st_ino == listed.st_ino, opened.st_dev == listed.st_dev
        else { return }
        try body()
    }

    // MARK: - Cancellation

    private func handleCancel(name: String, entry: String) {
        if let job = running[name] {
            logger.notice("cancellation requested", metadata: ["request.name": "\(name)", "job.id": "\(job.jobId)"])
            _ = rename(settings.spoolDirectory + "/" + entry, store.jobDirectory(job.jobId) + "/cancel")
            job.control.stop(.cancelRequested, interruptNow: true)
            return
        }
        let isHere = access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0
        if isHere {
            // Waiting or queued: claim it so no other agent starts it, then end it as cancelled.
            pending[name] = nil
            queue.removeAll { $0.name == name }
            do {
                guard let jobId = try store.claim(name: name) else { return }
                _ = rename(settings.spoolDirectory + "/" + entry, store.jobDirectory(jobId) + "/cancel")
                // Status first, then the move (a kill in between leaves a job that is resumed, not a stale status).
                let finished = store.finishedDirectory + "/" + jobId
                var doc = StatusPublisher.existing(at: statusPath(name)) ?? StatusDocument(request: name, state: .cancelled)
                doc.requestFile = finished + "/request.json"
                doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
                doc.transition(to: .cancelled, message: "cancelled before it started")
                doc.advanceSequence()
                try AtomicFile.write(try doc.encoded(), to: statusPath(name), mode: settings.statusFileMode)
                _ = try store.finish(jobId: jobId, name: name, state: .cancelled, statusPath: statusPath(name))
                try? journal.record(.init(jobId: jobId, name: name, sha256: doc.sha256, mous: doc.mous, state: .cancelled, attempt: 0, jobDirectory: finished, statusPath: statusPath(name), updatedAt: doc.updatedAt, finishedAt: doc.updatedAt))
                logger.warning("request state changed", metadata: ["request.name": "\(name)", "state": "cancelled"])
            } catch {
                logger.error("cannot cancel a queued request", metadata: ["request.name": "\(name)", "error": "\(error)"])
            }
            return
        }
        if let status = StatusPublisher.existing(at: statusPath(name)) {
            if !status.state.isTerminal, let agent = status.agent, agent.host != AgentIdentity.current.host || agent.pid != AgentIdentity.current.pid {
                return  // another agent runs it and will see the cancel file at its next step
            }
            if !status.state.isTerminal { return }  // a takeover may pick it up
            _ = try? store.quarantine(entry: entry, reason: "request \(name) has already ended (\(status.state.rawValue)); nothing to cancel", code: "nothingToCancel")
        } else {
            _ = try? store.quarantine(entry: entry, reason: "there is no request named \(name)", code: "nothingToCancel")
        }
        logger.notice("cancellation ignored", metadata: ["request.name": "\(name)", "reason": "nothing to cancel"])
    }

    // MARK: - Scheduling

    /// Starts queued requests while there are free slots, oldest first.
    func pump() {
        while !draining, running.count < settings.maxConcurrentRestores {
            // First come, first served — skipping droppers that already use their share of the slots.
            guard let index = queue.firstIndex(where: { ownerHasRoom($0.owner) }) else { return }
            let next = queue.remove(at: index)
            do {
                guard let jobId = try store.claim(name: next.name) else {
                    metrics.add(\.claimsLost)
                    continue
                }
                metrics.add(\.claims)
                start(jobId: jobId, name: next.name, resume: false, attempt: 1, owner: next.owner)
            } catch {
                logger.error("claim failed", metadata: ["request.name": "\(next.name)", "error": "\(error)"])
            }
        }
    }

    /// Whether `owner` may start another restore under `maxConcurrentPerDropper` (0: no per-dropper bound).
    private func ownerHasRoom(_ owner: uid_t) -> Bool {
        settings.maxConcurrentPerDropper <= 0 || running.values.filter { $0.owner == owner }.count < settings.maxConcurrentPerDropper
    }

    private func start(jobId: String, name: String, resume: Bool, attempt: Int, owner: uid_t? = nil) {
        let control = JobControl()
        running[name] = RunningJob(jobId: jobId, control: control, attempt: attempt, owner: owner)
        let runner = JobRunner(
            jobId: jobId, name: name, resume: resume, attempt: attempt, agent: self, control: control,
            logger: logger.with(["request.name": "\(name)", "job.id": "\(jobId)"]))
        let task = Task { [weak self] in
            await runner.run()
            await self?.jobEnded(name: name)
        }
        control.attach(task)
    }

    private func jobEnded(name: String) {
        running[name] = nil
        if !draining {
            // A file of the same name dropped while this one ran.
            if access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0 { examine(name: name) }
            pump()
        }
        if running.isEmpty {
            let waiters = finishedWaiters
            finishedWaiters = []
            for w in waiters { w.resume() }
        }
    }

    // MARK: - Recovery and leases

    /// Resumes jobs whose lease is free: our own after a crash or clean stop, others' after expiry.
    func recoverJobs() {
        for jobId in store.activeJobIds() where !running.values.contains(where: { $0.jobId == jobId }) {
            guard !draining, running.count < settings.maxConcurrentRestores else { return }
            let dir = store.jobDirectory(jobId)
            guard let lease = store.readLease(jobId: jobId) else { continue }
            guard lease.isAvailable() else { continue }
            // Waiting to retry after a transient failure (the archive was down): not before its time.
            if let retryAt = store.readCheckpoint(jobId: jobId)?.retryAt, retryAt > Date().timeIntervalSince1970 { continue }
            let hasRequest = access(dir + "/request.json", F_OK) == 0
            if !hasRequest {
                // A claim interrupted before its rename: the request is still in the spool (or was never ours).
                try? FileManager.default.removeItem(atPath: dir)
                continue
            }
            let ownCleanStop = lease.released && lease.owner.host == AgentIdentity.current.host
            do {
                // A crash while concluding is not a failed attempt: the restore itself had ended.
                let counts = !lease.released && lease.concludes == nil
                guard let newLease = try store.takeOver(jobId: jobId, from: lease, countsAsAttempt: counts) else { continue }
                metrics.add(ownCleanStop ? \.resumes : \.takeovers)
                let name = store.readCheckpoint(jobId: jobId)?.name ?? String(jobId.split(separator: ".").first ?? "")
                logger.notice(
                    lease.released ? "resuming a request" : "taking over a request",
                    metadata: ["job.id": "\(jobId)", "request.name": "\(name)", "attempt": .stringConvertible(newLease.attempt), "previous.owner": "\(lease.owner.host):\(lease.owner.pid)"])
                start(jobId: jobId, name: name, resume: true, attempt: newLease.attempt)
            } catch {
                logger.error("cannot take over a job", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            }
        }
    }

    /// Renews the lease of every running job (one loop for all jobs, driven by the runtime every
    /// `leaseSeconds/3` at most), compare-and-set on the attempt it holds; a job whose lease another agent now
    /// holds is stopped at once and writes nothing more.
    func renewLeases() {
        for (name, job) in running {
            do {
                if try store.renewLease(jobId: job.jobId, attempt: job.attempt) == nil {
                    let lease = store.readLease(jobId: job.jobId)
                    logger.error(
                        "lease taken over by another agent; stopping",
                        metadata: [
                            "request.name": "\(name)", "job.id": "\(job.jobId)", "attempt": "\(job.attempt)",
                            "owner": "\(lease.map { "\($0.owner.host):\($0.owner.pid) attempt \($0.attempt)" } ?? "none")",
                        ])
                    job.control.stop(.leaseLost, interruptNow: true)
                }
            } catch {
                logger.warning("cannot renew a lease", metadata: ["job.id": "\(job.jobId)", "error": "\(error)"])
            }
        }
    }

    // MARK: - Shutdown

    /// Stops taking requests; running steps get `grace` seconds to finish, then are interrupted and
    /// checkpointed; leases are released so a restart resumes at once.
    func shutdown(grace: Double) async {
        draining = true
        queue.removeAll()
        for job in running.values { job.control.stop(.shutdown, interruptNow: false) }
        guard !running.isEmpty else { return }
        logger.notice("stopping: waiting for running steps", metadata: ["running": .stringConvertible(running.count), "grace.seconds": .stringConvertible(grace)])
        let controls = running.values.map(\.control)
        let timer = Task {
            try? await Task.sleep(for: .seconds(grace))
            for c in controls { c.interrupt() }
        }
        await withCheckedContinuation { finishedWaiters.append($0) }
        timer.cancel()
    }

    var isDraining: Bool { draining }

    /// Removes succeeded and cancelled jobs older than the retention (failed and rejected ones are kept).
    nonisolated func collectGarbage(retentionDays: Double) async {
        let store = self.store
        let removed = await BlockingWork.run { _ in store.collectGarbage(retention: retentionDays * 86400) }
        if !removed.isEmpty { logger.info("finished requests past their retention removed", metadata: ["jobs": "\(removed)"]) }
    }

    /// Seconds the oldest queued request has waited for a slot (0 when none).
    var oldestQueuedAge: Double {
        guard let first = queue.first else { return 0 }
        return max(0, Date().timeIntervalSince1970 - first.firstSeen)
    }
}

extension Logger {
    /// A copy with extra metadata on every line.
    func with(_ extra: Logger.Metadata) -> Logger {
        var copy = self
        for (k, v) in extra { copy[metadataKey: k] = v }
        return copy
    }
}
