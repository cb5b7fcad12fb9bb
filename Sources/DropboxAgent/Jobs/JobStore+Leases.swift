import Delivery
import FoundationEssentials
import Glibc

extension JobStore {
    // MARK: - Leases and fencing
    //
    // Each attempt of a job has its own lease file, `attempts/<n>.json`; the job's current lease is the one with
    // the highest n. No lock is involved anywhere (`flock` does not cross hosts on sshfs, and on NFS only with the
    // lock daemon); the guarantees come from these primitives, which local filesystems, NFS and SFTP (sshfs: the
    // server runs the same system calls) all implement atomically:
    // - `link(2)` of a complete, fsynced temporary file (``AtomicFile/create(_:at:mode:)``) *wins* attempt n:
    //   exactly one agent's link succeeds, the others get `EEXIST`; the file has its full content from the moment
    //   it exists, so there is no "attempt won but lease not yet written" window. On NFS a retransmitted link can
    //   report `EEXIST` although it succeeded: the temporary file's link count (2) tells.
    // - Only the winner of attempt n ever writes `attempts/<n>.json` again (renewals, release): temp file, `fsync`,
    //   `rename(2)` over it, `fsync` of the directory. A single writer needs no read-modify-write protection, and a
    //   renewal by a stalled owner lands in its own, superseded file, never over the new owner's lease.
    // - Fencing: attempt n is held while `attempts/<n+1>.json` does not exist. A taker links exactly
    //   `<highest>+1`, so the first takeover after n creates n+1: one `stat` decides. The same slot is how the
    //   holder claims the right to *conclude* (mail, final status, move to finished/): it links n+1 itself, marked
    //   `concludes: n`. Concluding and being taken over are thereby mutually exclusive — exactly one of the two
    //   links succeeds — so a request is concluded once, and an owner that lost the race stops without mailing.
    // - Expiry compares the holder's heartbeat (its clock) with the reader's clock: hosts must keep their clocks
    //   synchronised (NTP) to well within `leaseSeconds`.

    /// The lease file of attempt `attempt` (in `jobs/`, or in `finished/` when `finished` is set).
    func leasePath(jobId: String, attempt: Int, finished: Bool = false) -> String {
        (finished ? finishedDirectory + "/" + jobId : jobDirectory(jobId)) + "/attempts/\(attempt).json"
    }

    /// The lease of one attempt, as its holder last wrote it.
    func lease(jobId: String, attempt: Int, finished: Bool = false) -> Lease? {
        FileManager.default.readJSON(Lease.self, at: leasePath(jobId: jobId, attempt: attempt, finished: finished))
    }

    /// The job's current lease: the highest attempt's. (A job directory from an earlier version, with one shared
    /// `lease.json`, is read from that file; its next takeover moves it to per-attempt leases.)
    func readLease(jobId: String) -> Lease? {
        let dir = jobDirectory(jobId)
        let attempts = ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/attempts")) ?? []).compactMap {
            entry -> Int? in
            guard entry.hasSuffix(".json"), !entry.hasPrefix(".") else { return nil }
            return Int(entry.dropLast(5))
        }
        if let highest = attempts.max() { return lease(jobId: jobId, attempt: highest) }
        return FileManager.default.readJSON(Lease.self, at: dir + "/lease.json")
    }

    /// Takes over a job whose lease is available by winning attempt `old.attempt + 1` (an exclusive `link(2)`):
    /// compare-and-set without a lock — the link fails when anyone (another taker, the owner concluding) has
    /// already moved the job past `old`.
    ///
    /// - Parameter countsAsAttempt: false for a resume after a clean stop, a transient-failure wait or a crash
    ///   while concluding: the new attempt is not counted against `agent.maxAttempts`.
    /// - Returns: the new lease, or nil when another agent moved the job past `old` first.
    func takeOver(jobId: String, from old: Lease, countsAsAttempt: Bool) throws -> Lease? {
        let lease = Lease(
            owner: .current, attempt: old.attempt + 1, heartbeat: Date().timeIntervalSince1970,
            leaseSeconds: leaseSeconds,
            counted: old.countedAttempts + (countsAsAttempt ? 1 : 0))
        guard try AtomicFile.create(try encodeJSON(lease), at: leasePath(jobId: jobId, attempt: lease.attempt)) else {
            return nil
        }
        CrashPoint.hit("takeover-after-lease")
        return lease
    }

    /// Claims the right to conclude attempt `attempt` (mail, final status, the move to `finished/`): links
    /// `attempts/<attempt+1>.json` marked `concludes: attempt`. Idempotent for its holder.
    ///
    /// - Returns: false when another agent took the job over first (this agent must stop without touching it).
    func claimConclusion(jobId: String, attempt: Int) throws -> Bool {
        guard let mine = lease(jobId: jobId, attempt: attempt), mine.owner == .current else { return false }
        let next = Lease(
            owner: .current, attempt: attempt + 1, heartbeat: Date().timeIntervalSince1970, leaseSeconds: leaseSeconds,
            counted: mine.countedAttempts, concludes: attempt)
        if try AtomicFile.create(try encodeJSON(next), at: leasePath(jobId: jobId, attempt: attempt + 1)) {
            return true
        }
        return lease(jobId: jobId, attempt: attempt + 1).map { $0.owner == .current && $0.concludes == attempt }
            ?? false
    }

    /// Renews attempt `attempt`'s lease (or, once it claimed the conclusion, that lease): a new heartbeat written
    /// by the attempt's only writer, after checking that no later attempt exists.
    ///
    /// - Returns: the renewed lease, or nil when the attempt is no longer ours (taken over, or gone).
    /// - Parameter keepReleased: the periodic renewal: a lease its job has already released is left as it is (a
    ///   renewal racing with the release must not take it back).
    func renewLease(jobId: String, attempt: Int, released: Bool = false, keepReleased: Bool = false) throws -> Lease? {
        if access(jobDirectory(jobId), F_OK) != 0 {
            // Concluded (moved to finished/) while the renewal loop still lists it: nothing to renew, not lost.
            guard holdsLease(jobId: jobId, attempt: attempt) else { return nil }
            return lease(jobId: jobId, attempt: attempt + 1, finished: true)
                ?? lease(jobId: jobId, attempt: attempt, finished: true)
        }
        var current = attempt
        if let next = lease(jobId: jobId, attempt: attempt + 1) {
            guard next.owner == .current, next.concludes == attempt else { return nil }
            current = attempt + 1
        } else if access(leasePath(jobId: jobId, attempt: attempt + 1), F_OK) == 0 {
            return nil  // exists but unreadable: never ours to overwrite
        }
        guard var lease = lease(jobId: jobId, attempt: current), lease.owner == .current else { return nil }
        if keepReleased && lease.released { return lease }
        lease.heartbeat = Date().timeIntervalSince1970
        lease.released = released
        try AtomicFile.write(try encodeJSON(lease), to: leasePath(jobId: jobId, attempt: current))
        return lease
    }

    /// Whether this agent still holds attempt `attempt` of the job (the fencing check before every write): no
    /// later attempt exists but its own conclusion claim. Looks in `finished/` once the job has moved there.
    func holdsLease(jobId: String, attempt: Int) -> Bool {
        for finished in [false, true] {
            if let next = lease(jobId: jobId, attempt: attempt + 1, finished: finished) {
                return next.owner == .current && next.concludes == attempt
            }
            if access(leasePath(jobId: jobId, attempt: attempt + 1, finished: finished), F_OK) == 0 { return false }
            // The job may move from jobs/ to finished/ between two reads: the loop then finds both there.
            if let mine = lease(jobId: jobId, attempt: attempt, finished: finished) { return mine.owner == .current }
        }
        return false
    }

    /// Gives a job folder that holds a request but no lease at all (an interrupted claim's, or one whose lease
    /// files were lost) an expired lease, so that any agent takes it over. Exclusive like every lease creation.
    ///
    /// - Returns: whether this call created it.
    func restoreLease(jobId: String, countedAttempts: Int) throws -> Bool {
        let lease = Lease(
            owner: .current, attempt: 1, heartbeat: 0, leaseSeconds: leaseSeconds, counted: countedAttempts)
        return try AtomicFile.create(try encodeJSON(lease), at: leasePath(jobId: jobId, attempt: 1))
    }

    /// Records in the shared job directory, before the notification goes into this agent's (local, durable) mail
    /// queue, that this agent has it (`<job>/notified`, created exclusively). An agent that takes the job over
    /// after a crash between queueing and the checkpoint finds it and does not queue the mail again: the queue of
    /// the host that holds it sends it (when its agent runs again, if that host died). Mail is thereby sent at most
    /// once per request across hosts; a crash in the instant between this record and the queue's fsync loses it.
    ///
    /// - Returns: nil when this call recorded the hand-off, else the agent that had it first.
    func recordNotificationHandOff(jobId: String) throws -> AgentIdentity? {
        let path = jobDirectory(jobId) + "/notified"
        if try AtomicFile.create(try encodeJSON(AgentIdentity.current), at: path) { return nil }
        return FileManager.default.readJSON(AgentIdentity.self, at: path) ?? AgentIdentity(host: "unknown", pid: 0)
    }
}
