import Delivery
import FoundationEssentials
import Glibc
import InotifyWatcher
import Synchronization
import RestoreSteps

/// The shared work directory: claims, leases, checkpoints, quarantine and the idempotency index.
///
/// Layout (all on the spool's filesystem, so that claims are single `rename(2)` calls):
/// ```
/// <work>/jobs/<jobId>/{request.json, job.json, attempts/<n>.json, links/, cancel}
/// <work>/finished/<jobId>/     terminal jobs, kept (retention)
/// <work>/rejected/             rejected inputs, each with a .reason.txt
/// <work>/index/<sha256>.json   idempotency index: which job ran this content
/// <work>/status/<NAME>.json    each request name's status document, the state its status file is written from
///                              (``StatusRecords``)
/// ```
/// Exactly-once rests on two atomic operations that work on local filesystems, NFS and sshfs alike, and on no
/// lock: `rename(2)` of the request out of the spool (one racer wins, the others get ENOENT; on NFS a won rename
/// may be reported as failed, so the destination is checked) and `link(2)` of `attempts/<n>.json` (one agent wins
/// attempt n; see "Leases and fencing" below).
struct JobStore: Sendable {
    let workDirectory: String
    let spoolDirectory: String
    let rejectedDirectory: String
    let leaseSeconds: Double

    var jobsDirectory: String { workDirectory + "/jobs" }
    var finishedDirectory: String { workDirectory + "/finished" }
    var indexDirectory: String { workDirectory + "/index" }

    /// The requests' status records, their status files written with `mode`.
    func statusRecords(mode: mode_t = 0o644) -> StatusRecords {
        StatusRecords(workDirectory: workDirectory, spoolDirectory: spoolDirectory, mode: mode)
    }

    /// Creates the directories and checks that claims can be atomic (same filesystem as the spool).
    /// The work directory is created private (0700): droppers never list claimed or rejected requests (an existing
    /// directory keeps the administrator's mode).
    func prepare() throws {
        try PrivateDirectory.create(workDirectory, mode: 0o700)
        for dir in [
            spoolDirectory, workDirectory, jobsDirectory, finishedDirectory, indexDirectory, rejectedDirectory,
            statusRecords().directory,
        ] {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        }
        var a = stat()
        var b = stat()
        guard stat(spoolDirectory, &a) == 0, stat(workDirectory, &b) == 0 else {
            throw SystemCallError(call: "stat", path: workDirectory, errno: errno)
        }
        guard a.st_dev == b.st_dev else {
            throw ConfigurationError(
                path: "$.agent.workDirectory",
                message:
                    "\(workDirectory) is not on the spool's filesystem; claims need an atomic rename(2) from \(spoolDirectory)"
            )
        }
    }

    func jobDirectory(_ jobId: String) -> String { jobsDirectory + "/" + jobId }

    private static let sequence = Counter()

    /// A unique job id for a claim by this process.
    func newJobId(for name: String) -> String {
        let me = AgentIdentity.current
        let stamp = Timestamp.now().replacingAll(":", with: "").replacingAll("-", with: "")
        return "\(name).\(stamp.prefix(15)).\(SpoolNames.quarantineName(me.host)).\(me.pid).\(Self.sequence.next())"
    }

    /// Claims `name` from the spool: exactly one agent wins.
    ///
    /// The job directory and the lease of attempt 1 (`attempts/1.json`, created by `link(2)`, so it is complete
    /// from the moment it exists) come first, then the `rename(2)` of the request out of the spool decides: one
    /// racer wins, the others get `ENOENT` and remove their directory.
    ///
    /// - Returns: the job id, or nil when another agent (or the dropper) took the file first.
    func claim(name: String) throws -> String? {
        let jobId = newJobId(for: name)
        let dir = jobDirectory(jobId)
        try FileManager.default.createDirectory(atPath: dir + "/attempts", withIntermediateDirectories: true)
        CrashPoint.hit("claim-before-lease")
        let first = Lease(
            owner: .current, attempt: 1, heartbeat: Date().timeIntervalSince1970, leaseSeconds: leaseSeconds)
        do {
            guard try AtomicFile.create(try encodeJSON(first), at: leasePath(jobId: jobId, attempt: 1)) else {
                throw SystemCallError(call: "link", path: leasePath(jobId: jobId, attempt: 1), errno: EEXIST)
            }
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        let source = spoolDirectory + "/" + name + ".json"
        let destination = dir + "/request.json"
        // Same host only: the lock SpoolAgent holds while it writes `waiting`/`queued` for this file, so that our
        // rename (and so our `running`) comes after any such status another agent *of this kernel* writes for it.
        // `flock` does not cross hosts (sshfs: per mount; NFS: only with the lock daemon) and exactly-once does
        // not rest on it: the rename below decides alone.
        let lockFD = open(source, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        if lockFD >= 0 { flock(lockFD, LOCK_EX) }
        defer { if lockFD >= 0 { close(lockFD) } }
        if rename(source, destination) != 0 {
            let e = errno
            // NFS: a retransmitted rename can fail although the first one happened. Believe the destination.
            if access(destination, F_OK) != 0 {
                try? FileManager.default.removeItem(atPath: dir)
                if e == ENOENT { return nil }
                throw SystemCallError(call: "rename", path: source, errno: e)
            }
        }
        // The commit marker, if any, goes with the request (kept, like everything the dropper gave us).
        _ = rename(spoolDirectory + "/" + SpoolNames.commitMarker(for: name), dir + "/request.json.ok")
        try AtomicFile.syncDirectory(spoolDirectory)
        try AtomicFile.syncDirectory(dir)
        return jobId
    }

    func readCheckpoint(jobId: String) -> JobCheckpoint? {
        FileManager.default.readJSON(JobCheckpoint.self, at: jobDirectory(jobId) + "/job.json")
    }

    func writeCheckpoint(_ checkpoint: JobCheckpoint) throws {
        try AtomicFile.write(try encodeJSON(checkpoint), to: jobDirectory(checkpoint.jobId) + "/job.json")
    }

    /// Active job ids (claimed, not finished).
    func activeJobIds() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: jobsDirectory)) ?? []).filter { !$0.hasPrefix(".") }
            .sorted()
    }

    /// Moves a terminal job out of `jobs/` into `finished/`; returns its new directory.
    /// How a finished job ended (`final.json`), for retention.
    struct FinalRecord: Codable, Sendable {
        var name: String
        var state: RequestState
        var finishedAt: Double
        var statusPath: String
    }

    /// Moves a terminal job out of `jobs/` into `finished/`, recording how it ended; returns its new directory.
    func finish(jobId: String, name: String, state: RequestState, statusPath: String) throws -> String {
        try? AtomicFile.write(
            try encodeJSON(
                FinalRecord(name: name, state: state, finishedAt: Date().timeIntervalSince1970, statusPath: statusPath)),
            to: jobDirectory(jobId) + "/final.json")
        return try finish(jobId: jobId)
    }

    /// Removes finished jobs that succeeded or were cancelled more than `retention` seconds ago, with their
    /// status records and files (when the record still describes that job). Failed and rejected requests are kept
    /// forever: the contract never deletes them.
    /// - Returns: the removed job ids.
    func collectGarbage(retention: Double, now: Double = Date().timeIntervalSince1970) -> [String] {
        guard retention > 0 else { return [] }
        var removed: [String] = []
        for jobId in (try? FileManager.default.contentsOfDirectory(atPath: finishedDirectory)) ?? [] {
            let dir = finishedDirectory + "/" + jobId
            guard let final = FileManager.default.readJSON(FinalRecord.self, at: dir + "/final.json"),
                [.succeeded, .cancelled].contains(final.state), now - final.finishedAt > retention
            else { continue }
            statusRecords().remove(name: final.name, ifJobDirectory: dir)
            if (try? FileManager.default.removeItem(atPath: dir)) != nil { removed.append(jobId) }
        }
        return removed
    }

    private func finish(jobId: String) throws -> String {
        let target = finishedDirectory + "/" + jobId
        if rename(jobDirectory(jobId), target) != 0 {
            throw SystemCallError(call: "rename", path: jobDirectory(jobId), errno: errno)
        }
        try AtomicFile.syncDirectory(jobsDirectory)
        return target
    }

    // MARK: - Quarantine

    /// Moves a spool entry (any type: file, link, FIFO, directory) into the rejected directory with a reason
    /// file. `rename(2)` moves links and FIFOs themselves, never what they point to.
    ///
    /// - Returns: the kept path, or nil when the entry had already gone (someone else handled it).
    func quarantine(entry: String, reason: String, code: RestoreError.Code) throws -> String? {
        let stamp = Timestamp.now().replacingAll(":", with: "")
        let kept =
            rejectedDirectory + "/" + SpoolNames.quarantineName(entry) + "." + stamp + "."
            + String(UInt32.random(in: 0...UInt32.max), radix: 36)
        // The entry's bytes on disk: a name that is not UTF-8 comes from the watcher escaped (``FileName``).
        let source = FileName.bytes(of: spoolDirectory + "/" + entry).map { CChar(bitPattern: $0) } + [0]
        if rename(source, kept) != 0 {
            if errno == ENOENT { return nil }
            throw SystemCallError(call: "rename", path: spoolDirectory + "/" + entry, errno: errno)
        }
        let text =
            "entry: \(SpoolNames.printable(entry))\ncode: \(code)\nreason: \(reason)\nat: \(Timestamp.now())\nagent: \(AgentIdentity.current.host) pid \(AgentIdentity.current.pid)\n"
        try AtomicFile.write(Data(text.utf8), to: kept + ".reason.txt")
        try AtomicFile.syncDirectory(spoolDirectory)
        return kept
    }

    // MARK: - Idempotency index

    /// What the index says about a request content.
    struct IndexEntry: Codable, Sendable, Equatable {
        var jobId: String
        var name: String
        var state: RequestState
        var finishedAt: Double?
        var statusPath: String
    }

    func indexEntry(sha256: String) -> IndexEntry? {
        FileManager.default.readJSON(IndexEntry.self, at: indexDirectory + "/" + sha256 + ".json")
    }

    /// Records `entry` only if no entry exists yet; returns the existing one otherwise.
    func createIndexEntry(_ entry: IndexEntry, sha256: String) throws -> IndexEntry? {
        if try AtomicFile.create(try encodeJSON(entry), at: indexDirectory + "/" + sha256 + ".json") { return nil }
        return indexEntry(sha256: sha256)
    }

    func writeIndexEntry(_ entry: IndexEntry, sha256: String) throws {
        try AtomicFile.write(try encodeJSON(entry), to: indexDirectory + "/" + sha256 + ".json")
    }
}

/// A thread-safe counter for unique ids within this process.
final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int {
        value.withLock {
            $0 += 1
            return $0
        }
    }
}

/// Creating a directory with an exact mode whatever the umask.
enum PrivateDirectory {
    /// Creates `path` (and missing parents, with default modes) and gives the new directory `mode`. An existing
    /// directory is left as it is.
    static func create(_ path: String, mode: mode_t) throws {
        guard !FileManager.default.fileExists(atPath: path) else { return }
        let parent = PathString.deletingLastComponent(path)
        if !parent.isEmpty {
            try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        if mkdir(path, mode) != 0 {
            guard errno == EEXIST else { throw SystemCallError(call: "mkdir", path: path, errno: errno) }
            return
        }
        chmod(path, mode)
    }
}
