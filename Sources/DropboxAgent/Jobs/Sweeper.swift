import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// Removes what crashes leave behind, on start and periodically, and only what has no live owner:
/// - `downloads/.<jobId>.publishing-*` staging directories (a `kill -9` during delivery) of jobs that are no
///   longer in `jobs/` (a job still there may be resumed; its staging goes once it has concluded);
/// - working areas (`restores/<jobId>`) of concluded jobs that `delivery.cleanWorkingArea` says to remove (a
///   `kill -9` just past `succeeded`);
/// - job folders without a lease (`attempts/<n>.json`): without `request.json` they are claims interrupted before the rename (the
///   request is still in the spool) and are removed; with it they get an expired lease so that any agent takes
///   them over;
/// - restore-cache staging directories (`<data>/restore-cache/.staging-*`, a `kill -9` while a restore was kept
///   for reuse) whose writer is gone: its job has ended, or it was this host's and its process is dead
///   (``RestoreCache/sweepStaging(isAlive:orphanAge:now:)``); a live job's is never touched;
/// - orphan temporary files of ``AtomicFile`` (`.NAME.<pid>.<n>.tmp`) older than ``orphanAge`` whose process is
///   not alive on this host, in the spool, work, index, jobs, status records, data and download directories, every job
///   folder (active or finished) and its `attempts/`, and ``otherDirectories``.
struct Sweeper: Sendable {
    let store: JobStore
    let restoreDirectory: String
    let downloadDirectory: String
    let dataDirectory: String
    /// `delivery.cleanWorkingArea`: `never`, `onSuccess`, `always`.
    let cleanPolicy: String
    let logger: Logger
    /// Job folders without a lease and temporary files are left alone this long (seconds) after their last change.
    var orphanAge: Double = 600
    /// An interrupted claim's folder (no lease, no request) is removed after this long.
    var claimAge: Double = 60
    /// Other directories the agent writes atomically (the dashboard and its request pages).
    var otherDirectories: [String] = []
    /// Seconds between two sweeps of a running agent (the first is at start): `agent.sweepIntervalSeconds`.
    var interval: Double = AgentSettings.defaultSweepIntervalSeconds
    /// The restore cache whose staging directories are swept (`delivery.reuseMaxBytes` > 0), or nil.
    var restoreCache: RestoreCache? = nil

    /// What one sweep removed or repaired (logged, and returned for tests).
    struct Report: Sendable, Equatable {
        var stagings: [String] = []
        var restoreCacheStagings: [String] = []
        var workingAreas: [String] = []
        var jobFolders: [String] = []
        var leasesRestored: [String] = []
        var temporaryFiles: [String] = []
        var isEmpty: Bool { self == Report() }
    }

    @discardableResult
    func sweep(now: Double = Date().timeIntervalSince1970) -> Report {
        var report = Report()
        let fm = FileManager.default
        let active = Set(store.activeJobIds())

        // Jobs without a lease.
        for jobId in active {
            let dir = store.jobDirectory(jobId)
            guard store.readLease(jobId: jobId) == nil, let age = Self.age(of: dir, now: now) else { continue }
            if access(dir + "/request.json", F_OK) != 0 {
                if age > claimAge, (try? fm.removeItem(atPath: dir)) != nil { report.jobFolders.append(jobId) }
            } else if age > claimAge {
                // Attempt directories of an earlier version's layout count as started attempts.
                let attempt =
                    ((try? fm.contentsOfDirectory(atPath: dir + "/attempts")) ?? []).compactMap { Int($0) }.max() ?? 1
                let restored = try? store.restoreLease(jobId: jobId, countedAttempts: attempt)
                if restored == true { report.leasesRestored.append(jobId) }
            }
        }

        // Publication staging directories of concluded jobs.
        for entry in (try? fm.contentsOfDirectory(atPath: downloadDirectory)) ?? [] {
            guard entry.hasPrefix("."), let range = entry.firstRange(of: ".publishing-") else { continue }
            let jobId = String(entry[entry.index(after: entry.startIndex)..<range.lowerBound])
            guard !jobId.isEmpty, !active.contains(jobId), access(store.jobDirectory(jobId), F_OK) != 0 else {
                continue
            }
            if (try? fm.removeItem(atPath: downloadDirectory + "/" + entry)) != nil { report.stagings.append(entry) }
        }

        // Restore-cache staging directories whose writer is gone.
        if let restoreCache {
            report.restoreCacheStagings = restoreCache.sweepStaging(
                isAlive: { AgentIdentity(host: $0.host, pid: $0.pid, bootId: $0.bootId).isAliveOnThisHost },
                orphanAge: orphanAge, now: now)
        }

        // Working areas of concluded jobs, by the cleaning policy.
        if cleanPolicy != "never" {
            for jobId in (try? fm.contentsOfDirectory(atPath: restoreDirectory)) ?? [] where !active.contains(jobId) {
                guard access(store.jobDirectory(jobId), F_OK) != 0,
                    let final = fm.readJSON(
                        JobStore.FinalRecord.self, at: store.finishedDirectory + "/" + jobId + "/final.json"),
                    cleanPolicy == "always" || final.state == .succeeded
                else { continue }
                if (try? fm.removeItem(atPath: restoreDirectory + "/" + jobId)) != nil {
                    report.workingAreas.append(jobId)
                }
            }
        }

        // Orphan temporary files.
        var directories = [
            store.spoolDirectory, store.workDirectory, store.indexDirectory, store.jobsDirectory,
            store.statusRecords().directory, dataDirectory, downloadDirectory,
        ]
        // A job folder moves to finished/ with whatever a killed agent left in it, and a lease is written in the
        // folder's attempts/ (`attempts/.<n>.json.<pid>.<n>.tmp`: found by bench/chaos at N = 100, twice).
        let finished = store.finishedDirectory
        let jobFolders =
            active.map { store.jobDirectory($0) }
            + ((try? fm.contentsOfDirectory(atPath: finished)) ?? []).map { finished + "/" + $0 }
        directories += jobFolders.flatMap { [$0, $0 + "/attempts"] } + otherDirectories
        for directory in directories {
            for entry in (try? fm.contentsOfDirectory(atPath: directory)) ?? [] {
                guard let pid = Self.temporaryFileOwner(entry), pid != getpid(), !(kill(pid, 0) == 0 || errno == EPERM)
                else { continue }
                let path = directory + "/" + entry
                guard let age = Self.age(of: path, now: now), age > orphanAge else { continue }
                if unlink(path) == 0 { report.temporaryFiles.append(path) }
            }
        }

        if !report.isEmpty {
            logger.notice(
                "leftovers swept",
                metadata: [
                    "stagings": "\(report.stagings)", "restore.cache.stagings": "\(report.restoreCacheStagings)",
                    "working.areas": "\(report.workingAreas)",
                    "job.folders": "\(report.jobFolders)",
                    "leases.restored": "\(report.leasesRestored)",
                    "temporary.files": .stringConvertible(report.temporaryFiles.count),
                ])
        }
        return report
    }

    /// The pid in an ``AtomicFile`` temporary name `.NAME.<pid>.<random>.tmp`, or nil for any other name.
    static func temporaryFileOwner(_ entry: String) -> pid_t? {
        guard entry.hasPrefix("."), entry.hasSuffix(".tmp") else { return nil }
        let parts = entry.dropLast(4).split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count >= 4, UInt32(parts[parts.count - 1]) != nil, let pid = pid_t(parts[parts.count - 2]), pid > 0
        else { return nil }
        return pid
    }

    /// Seconds since the last modification (mtime) of `path`, not following links.
    static func age(of path: String, now: Double) -> Double? {
        var st = stat()
        guard lstat(path, &st) == 0 else { return nil }
        return now - Double(st.st_mtim.tv_sec)
    }

    /// Sweeps on a thread of its own (removing a working area can take long; it must not hold the cooperative pool).
    func sweepOffPool() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            NativeThread.start(name: "sweeper") {
                sweep()
                done.resume()
            }
        }
    }
}
