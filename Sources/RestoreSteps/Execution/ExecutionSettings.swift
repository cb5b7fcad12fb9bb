/// Where step 5 runs CASA: `execution.backend`.
public enum ExecutionBackendKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// A child process group of the agent, on the agent's host (the default).
    case local
    /// A batch job on a Slurm cluster (``SlurmScheduler``), submitted with `sbatch` and tracked with
    /// `squeue`/`scontrol` (and `sacct` where accounting exists).
    case slurm
}

/// `execution.slurm`: the resources and options of the batch jobs. Every field is optional; what is not set is
/// left to the cluster's defaults, except the time limit, which defaults to `casa.timeoutSeconds`.
public struct SlurmSettings: Sendable, Hashable {
    /// `--partition`.
    public var partition: String?
    /// `--account`.
    public var account: String?
    /// `--cpus-per-task`; also how many execution blocks the job restores at once (`restore_mous.py --parallel`).
    /// Unset: one per execution block of the restore's plan.
    public var cpusPerTask: Int?
    /// `--mem` (Slurm's syntax: `4G`, `16000M`).
    public var memory: String?
    /// `--time` (Slurm's syntax: `minutes`, `minutes:seconds`, `hours:minutes:seconds`, `days-hours`); default: the
    /// CASA time limit (`casa.timeoutSeconds`), rounded up to whole seconds.
    public var timeLimit: String?
    /// More `sbatch` arguments, one argv element each (never a shell string: nothing is split or interpreted),
    /// placed after the agent's own options and before the job script.
    public var extraArguments: [String]
    /// How often a running job's state and progress file are read.
    public var pollSeconds: Double

    public init(
        partition: String? = nil, account: String? = nil, cpusPerTask: Int? = nil, memory: String? = nil,
        timeLimit: String? = nil, extraArguments: [String] = [], pollSeconds: Double = 5
    ) {
        self.partition = partition
        self.account = account
        self.cpusPerTask = cpusPerTask
        self.memory = memory
        self.timeLimit = timeLimit
        self.extraArguments = extraArguments
        self.pollSeconds = pollSeconds
    }
}

/// `execution`: the backend and its settings, as the restore steps see them.
public struct ExecutionSettings: Sendable, Hashable {
    public var backend: ExecutionBackendKind
    public var slurm: SlurmSettings
    /// How many times a job the scheduler lost (node failure, preemption) is submitted in all
    /// (`agent.maxAttempts`).
    public var maxSubmissions: Int
    /// The batch job script (`<casa.programDirectory>/run_job.sh`); nil when the program directory is unknown.
    public var jobScript: String?

    public init(
        backend: ExecutionBackendKind = .local, slurm: SlurmSettings = SlurmSettings(), maxSubmissions: Int = 3,
        jobScript: String? = nil
    ) {
        self.backend = backend
        self.slurm = slurm
        self.maxSubmissions = max(1, maxSubmissions)
        self.jobScript = jobScript
    }
}

/// What the status file shows of where CASA runs (`execution: {backend, jobIds, state}`).
public struct ExecutionStatus: Sendable, Hashable, Codable {
    /// `local` or `slurm`.
    public var backend: String
    /// The scheduler's job ids, oldest first (a job lost to a node failure and submitted again adds one); for the
    /// local backend the CASA process id.
    public var jobIds: [String]
    /// The scheduler's state of the newest job (`PENDING`, `RUNNING`, `COMPLETED`, `TIMEOUT`, …) or `submitting`.
    public var state: String

    public init(backend: String, jobIds: [String], state: String) {
        self.backend = backend
        self.jobIds = jobIds
        self.state = state
    }
}
