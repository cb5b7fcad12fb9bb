internal import FoundationEssentials
public import Logging
internal import Subprocess
internal import SystemPackage
internal import CFileIO
internal import Delivery

#if canImport(Glibc)
import Glibc
#endif

/// The `local` backend as a ``BatchScheduler``: the job script runs on this host as a session of its own
/// (`setsid -f`), detached from the agent, so CASA survives an agent that is killed and a restarted agent
/// re-attaches to it — the same shape as the Slurm backend (one ``ScheduledRunner`` for both, so they cannot
/// drift apart).
///
/// A job id is `<host>:<pid>:<start time>` (the start time in clock ticks since boot, `/proc/<pid>/stat` field 22):
/// a pid reused by an unrelated process after a reboot or a long time does not match, and an agent on another host
/// (a takeover) does not mistake one of its own processes for the job. The job is found by name (a restarted agent
/// that died before recording the id) through `/proc/*/cmdline`: the job script's argv holds its exit record,
/// which is named after the job. Cancelling stops the job's process group (SIGTERM, grace, SIGKILL). The time limit
/// is the runner's to enforce (``enforcesTimeLimit`` is false).
public struct LocalScheduler: BatchScheduler {
    public let backendName = "local"
    public let enforcesTimeLimit = false
    /// Between SIGTERM and SIGKILL of the job's process group.
    public var grace: Duration
    private let logger: Logger

    public init(grace: Duration, logger: Logger) {
        self.grace = grace
        self.logger = logger
    }

    public func submit(_ job: BatchJobSpec) async throws(SchedulerError) -> String {
        let argv = ["/usr/bin/setsid", "--fork", job.script] + job.arguments
        // The job's own stdout/stderr: its output file (run_job.sh writes CASA's output to the log itself).
        guard
            FileManager.default.createFile(atPath: job.output, contents: nil)
                || FileManager.default.fileExists(atPath: job.output)
        else {
            throw SchedulerError(command: argv, message: "cannot create \(job.output)")
        }
        do {
            let env: [Environment.Key: String] = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"]
            let output = try FileDescriptor.open(FilePath(job.output), .writeOnly, options: [.append])
            let result: ExecutionRecord_TerminationStatus
            do {
                let r = try await Subprocess.run(
                    .path(FilePath(argv[0])), arguments: Arguments(Array(argv.dropFirst())), environment: .custom(env),
                    workingDirectory: FilePath(job.workingDirectory), input: .none,
                    output: .fileDescriptor(output, closeAfterSpawningProcess: false),
                    error: .fileDescriptor(output, closeAfterSpawningProcess: false))
                result = r.terminationStatus.isSuccess ? .ok : .failed("\(r.terminationStatus)")
            } catch {
                try? output.close()
                throw error
            }
            try? output.close()
            if case .failed(let why) = result {
                throw SchedulerError(command: argv, message: "setsid ended with \(why)")
            }
        } catch let error as SchedulerError {
            throw error
        } catch {
            throw SchedulerError(command: argv, message: "could not start: \(error)")
        }
        // setsid --fork returns at once; the job is found by its exit record's name in its argv.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(10)
        while clock.now < deadline {
            if let id = Self.find(marker: "/" + job.name + ".exit.json").last { return id }
            if let exitRecord = job.arguments.first, FileManager.default.fileExists(atPath: exitRecord) {
                return "\(Self.hostName):0:0"  // already ended (a very short job); the exit record says how
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        throw SchedulerError(command: argv, message: "the job started but its process cannot be found")
    }

    public func jobs(named name: String) async throws(SchedulerError) -> [String] {
        Self.find(marker: "/" + name + ".exit.json")
    }

    public func state(of id: String) async throws(SchedulerError) -> BatchJobState? {
        guard let (pid, start) = Self.parse(id) else { return nil }  // another host's job: not ours to judge
        if pid > 0, let stat = Self.stat(pid), stat.start == start, stat.state != "Z", stat.state != "X" {
            return BatchJobState(state: "RUNNING", phase: .running)
        }
        return BatchJobState(state: "ENDED", phase: .ended)
    }

    public func cancel(_ id: String) async throws(SchedulerError) {
        guard let (pid, start) = Self.parse(id), pid > 0, let stat = Self.stat(pid), stat.start == start else { return }
        let survivors = await ProcessGroup(id: pid).terminate(grace: grace)
        if !survivors.isEmpty {
            throw SchedulerError(command: ["kill", "-\(pid)"], message: "processes \(survivors) survived SIGKILL")
        }
    }

    public func prepareNewSubmission(workingDirectory: String) async {
        // A CASA left in this working directory by an earlier run that is not the job being re-attached to (no
        // record of it survived) must not write into the same directory as the new one.
        await LeftoverProcesses.stop(workingIn: workingDirectory, grace: grace, logger: logger)
    }

    // MARK: - /proc

    /// `gethostname(2)` (no name resolution).
    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }()

    /// `(pid, start)` of an id of this host; nil for another host's id or a malformed one.
    static func parse(_ id: String) -> (Int32, UInt64)? {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, String(parts[0]) == hostName, let pid = Int32(parts[1]), let start = UInt64(parts[2])
        else { return nil }
        return (pid, start)
    }

    /// Ids of living processes with an argv element ending in `marker`.
    static func find(marker: String) -> [String] {
        var found: [(Int32, String)] = []
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(entry), let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else { continue }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            // The job is the session leader (`setsid`). Its children may carry the marker too for an instant — a
            // shell forks before it execs, and `$(date)` in run_job.sh is a forked copy of it — so only the leader
            // counts (a child's id, gone a moment later, made a re-attach check and the follower see a dead job).
            guard argv.contains(where: { $0.hasSuffix(marker) }), let stat = stat(pid), stat.state != "Z",
                stat.session == pid
            else {
                continue
            }
            found.append((pid, "\(hostName):\(pid):\(stat.start)"))
        }
        return found.sorted { $0.0 < $1.0 }.map(\.1)
    }

    /// Waits until the job's process ends or `limit` passes, whichever is first: its end is seen at once (a
    /// `pidfd` polled in 50 ms slices, so that cancellation is noticed), not up to a poll interval later (that lag
    /// was 0.13 s per restore on average with the 250 ms interval: bench/overhead.py). Sleeps `limit` when the id is
    /// not a live process of this host (ended already, another host's, a reused pid) or the kernel has no
    /// `pidfd_open` (before 5.3).
    public func waitForEnd(of id: String, upTo limit: Duration) async {
        guard let (pid, start) = Self.parse(id), pid > 0 else {
            try? await Task.sleep(for: limit)
            return
        }
        // A process already gone (or a pid reused since: the start time is checked after the pidfd exists) is
        // waited for as before, the whole limit: the follower then looks again without spinning while an exit
        // record that lags behind the process's end is not there yet.
        let fd = cfileio_pidfd_open(pid)
        guard fd >= 0 else {
            try? await Task.sleep(for: limit)
            return
        }
        guard let stat = Self.stat(pid), stat.start == start, stat.state != "Z", stat.state != "X" else {
            close(fd)
            try? await Task.sleep(for: limit)
            return
        }
        let milliseconds =
            Int(limit.components.seconds) * 1000 + Int(limit.components.attoseconds / 1_000_000_000_000_000)
        await BlockingWork.run { flag in
            defer { close(fd) }
            var left = max(0, milliseconds)
            while left > 0, !flag.isCancelled {
                var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                let slice = min(left, 50)
                if poll(&entry, 1, Int32(slice)) > 0 { return }
                left -= slice
            }
        }
    }

    /// State (field 3), session id (field 6) and start time (field 22) from `/proc/<pid>/stat`, parsed after the
    /// last `)`.
    static func stat(_ pid: Int32) -> (state: Character, start: UInt64, session: Int32)? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/stat"),
            let text = String(data: data, encoding: .utf8), let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After ")": field 3 is index 0, so field 22 is index 19.
        guard fields.count > 19, let state = fields[0].first, let session = Int32(fields[3]),
            let start = UInt64(fields[19])
        else { return nil }
        return (state, start, session)
    }
}

private enum ExecutionRecord_TerminationStatus {
    case ok
    case failed(String)
}
