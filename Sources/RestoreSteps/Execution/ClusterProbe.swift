internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// `dropbox-agent check --cluster`: a tiny batch job that proves a compute node sees what the restores need — it
/// lists the directories (`ls -ld`, so a missing one is named) and writes its exit record into the restore
/// directory (the working areas live there: the node must be able to write it). The agent then reads that record
/// from its own host, which proves the two share the filesystem.
public enum ClusterProbe {
    /// What the probe found.
    public struct Outcome: Sendable {
        public var ok: Bool
        /// One line: the job id and what the node saw, or what went wrong.
        public var detail: String
    }

    /// Submits the probe, waits for it (up to `timeout`: a busy cluster may keep it pending) and removes its files.
    ///
    /// - Parameters:
    ///   - scratch: a new directory inside the restore directory, for the probe's exit record and output.
    ///   - directories: what the node must see (restore directory, CASA program directory, CASA installations).
    public static func run(
        scheduler: any BatchScheduler, jobScript: String, scratch: String, directories: [String], timeout: Duration
    ) async -> Outcome {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        } catch {
            return Outcome(ok: false, detail: "cannot create \(scratch) on this host: \(ErrorText.describe(error))")
        }
        defer { try? fm.removeItem(atPath: scratch) }
        let exitRecord = scratch + "/exit.json"
        let log = scratch + "/probe.log"
        let spec = BatchJobSpec(
            name: "dropbox-check-\(ProcessInfo.processInfo.processIdentifier)", script: jobScript,
            arguments: [exitRecord, log, "/bin/ls", "-ld", "--"] + directories,
            workingDirectory: scratch, output: scratch + "/job.out", timeLimitSeconds: 60)
        let id: String
        do {
            id = try await scheduler.submit(spec)
        } catch {
            return Outcome(ok: false, detail: "the probe job could not be submitted: \(error)")
        }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last: BatchJobState?
        while clock.now < deadline {
            if let record = JobExitRecord.read(exitRecord) {
                let seen = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map {
                    String($0)
                }
                let node = record.host ?? "?"
                guard record.status == 0 else {
                    return Outcome(
                        ok: false,
                        detail:
                            "job \(id) on \(node) does not see everything: \(seen.filter { $0.contains("cannot access") }.joined(separator: "; "))"
                    )
                }
                return Outcome(
                    ok: true,
                    detail:
                        "job \(id) ran on \(node), saw \(directories.count) directories and wrote into \(scratch) (shared with this host)"
                )
            }
            if let state = try? await scheduler.state(of: id) {
                last = state
                if case .stopped = state.phase {
                    return Outcome(ok: false, detail: "job \(id) was stopped: \(state.summary)")
                }
            }
            try? await Task.sleep(for: .milliseconds(250))
        }
        _ = try? await scheduler.cancel(id)
        if let last, last.phase.isTerminal {
            return Outcome(
                ok: false,
                detail:
                    "job \(id) ended (\(last.summary)) but its exit record never appeared in \(scratch): the node does not share this filesystem with this host"
            )
        }
        return Outcome(
            ok: false,
            detail: "job \(id) did not finish within \(timeout)\(last.map { ": \($0.summary)" } ?? "") (cancelled)")
    }
}
