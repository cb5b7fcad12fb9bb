internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// A batch scheduler, as the restore needs it: submit a job under a name, find a job by that name, read a job's
/// state, cancel it. ``SlurmScheduler`` implements it with Slurm's commands; another scheduler (HTCondor) can
/// implement the same four operations and reuse everything else (``ScheduledRunner``).
public protocol BatchScheduler: Sendable {
    /// `slurm`: the backend name the status file shows.
    var backendName: String { get }
    /// Submits `job` and returns the scheduler's job id.
    ///
    /// - Throws: ``SchedulerError`` with the scheduler's own message. A failed submission may still have
    ///   submitted the job (a timeout after the controller accepted it): callers look for it by name.
    func submit(_ job: BatchJobSpec) async throws(SchedulerError) -> String
    /// The ids of jobs named `name` that the scheduler still knows (pending, running or recently ended), oldest
    /// first.
    func jobs(named name: String) async throws(SchedulerError) -> [String]
    /// The state of job `id`; nil when the scheduler no longer knows it (controllers forget ended jobs).
    func state(of id: String) async throws(SchedulerError) -> BatchJobState?
    /// Asks the scheduler to stop job `id` (its processes are signalled by the scheduler, on its node).
    func cancel(_ id: String) async throws(SchedulerError)
    /// Whether the scheduler stops a job at its time limit itself (Slurm does); when false, ``ScheduledRunner``
    /// cancels a job that runs past it.
    var enforcesTimeLimit: Bool { get }
    /// Called before a new job is submitted for `workingDirectory` (not before a re-attach). Default: nothing.
    func prepareNewSubmission(workingDirectory: String) async
    /// Waits between two looks at job `id`: up to `limit`, less when the scheduler can tell that the job ended
    /// sooner (the local backend sees its process end). Default: sleeps `limit` (returns early when cancelled).
    func waitForEnd(of id: String, upTo limit: Duration) async
}

extension BatchScheduler {
    public var enforcesTimeLimit: Bool { true }
    public func prepareNewSubmission(workingDirectory: String) async {}
    public func waitForEnd(of id: String, upTo limit: Duration) async { try? await Task.sleep(for: limit) }
}

/// One batch job to submit: a program and its arguments (no shell), where it runs, its output file, resources.
public struct BatchJobSpec: Sendable, Hashable {
    /// The job's name: derived from the restore's id and the submission number (``ScheduledRunner/jobName(restoreId:submission:)``),
    /// so a restarted agent finds a job it submitted before it crashed.
    public var name: String
    /// The job script (a fixed file of the agent: `casa/run_job.sh`).
    public var script: String
    /// The script's arguments, one element each.
    public var arguments: [String]
    /// The job's working directory.
    public var workingDirectory: String
    /// Where the scheduler writes the script's own standard output and error.
    public var output: String
    /// Time limit in seconds (used when the settings give none).
    public var timeLimitSeconds: Int

    public init(
        name: String, script: String, arguments: [String], workingDirectory: String, output: String,
        timeLimitSeconds: Int
    ) {
        self.name = name
        self.script = script
        self.arguments = arguments
        self.workingDirectory = workingDirectory
        self.output = output
        self.timeLimitSeconds = timeLimitSeconds
    }
}

/// A scheduler command that failed: which command, and what the scheduler said.
public struct SchedulerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The command's argv (without its environment).
    public var command: [String]
    /// The scheduler's message (its standard error, trimmed), or why the command could not run.
    public var message: String
    /// The exit status, when the command ran.
    public var exitStatus: Int32?

    public init(command: [String], message: String, exitStatus: Int32? = nil) {
        self.command = command
        self.message = message
        self.exitStatus = exitStatus
    }

    /// `sbatch failed (exit status 1): <the scheduler's lines, joined with "; ">` (the whole argv is in ``command``).
    public var description: String {
        let lines = message.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }.filter {
            !$0.isEmpty
        }
        return "\(command.first ?? "?") failed" + (exitStatus.map { " (exit status \($0))" } ?? "") + ": "
            + lines.joined(separator: "; ")
    }
}

/// Where a batch job is in its life, as the restore needs to know it.
public enum BatchJobPhase: Sendable, Hashable {
    /// Waiting for resources (or requeued).
    case pending
    /// Running (or completing).
    case running
    /// Ended; the program's own exit record says how.
    case ended
    /// Ended because the scheduler (not the program) stopped it.
    case stopped(BatchStopCause)

    /// Whether the job will not change any more.
    public var isTerminal: Bool {
        switch self {
        case .pending, .running: false
        case .ended, .stopped: true
        }
    }
}

/// Why the scheduler stopped a job.
public enum BatchStopCause: String, Sendable, Hashable, Codable {
    case timeLimit, outOfMemory, nodeFailure, preempted, cancelled, other

    /// Whether submitting the same job again may succeed: the job did nothing wrong (node failure, preemption).
    public var isRetryable: Bool { self == .nodeFailure || self == .preempted }
}

/// A job's state as the scheduler reports it.
public struct BatchJobState: Sendable, Hashable {
    /// The scheduler's own state name (`RUNNING`, `TIMEOUT`, …).
    public var state: String
    public var phase: BatchJobPhase
    /// The scheduler's reason (`TimeLimit`, `NonZeroExitCode`, `Priority`), when it gives one.
    public var reason: String?
    /// The scheduler's exit code field (`3:0`: exit code 3, signal 0), when it gives one.
    public var exitCode: String?
    /// The job's time limit and run time as the scheduler prints them.
    public var timeLimit: String?
    public var runTime: String?

    public init(
        state: String, phase: BatchJobPhase, reason: String? = nil, exitCode: String? = nil, timeLimit: String? = nil,
        runTime: String? = nil
    ) {
        self.state = state
        self.phase = phase
        self.reason = reason
        self.exitCode = exitCode
        self.timeLimit = timeLimit
        self.runTime = runTime
    }

    /// One line for the status file and the log: `TIMEOUT (reason TimeLimit, run time 00:01:05 of 00:01:00)`.
    public var summary: String {
        var parts: [String] = []
        if let reason, reason != "None" { parts.append("reason \(reason)") }
        if let exitCode, exitCode != "0:0" { parts.append("exit code \(exitCode)") }
        if let runTime { parts.append("run time \(runTime)" + (timeLimit.map { " of \($0)" } ?? "")) }
        return state + (parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")")
    }
}
