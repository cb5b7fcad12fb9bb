internal import FoundationEssentials
internal import Glibc

/// The execution checkpoint of step 5 (`<logs>/execution.json`, in the working area the cluster shares): every
/// batch job submitted for this restore, written *before* `sbatch` runs (name and number) and again when its id is
/// known, so an agent restarted after `kill -9` re-attaches to the job instead of submitting it again, even when it
/// died between the submission and recording the id (it then looks the job up by name).
public struct ExecutionRecord: Codable, Sendable, Hashable {
    /// One submission of the restore's batch job.
    public struct Submission: Codable, Sendable, Hashable {
        /// 1, 2, …: numbers the job name (``SlurmText/jobName(restoreId:submission:)``).
        public var number: Int
        /// The job name given to the scheduler.
        public var name: String
        /// The scheduler's id, once known.
        public var jobId: String?
        /// The job's exit record (written by `run_job.sh` on the node).
        public var exitRecord: String
        /// The scheduler's last known state.
        public var state: String?
        /// Whether the agent has taken the job's outcome (a later run of step 5 submits a new job).
        public var concluded: Bool = false
        /// When the submission was recorded (seconds since the epoch): the time limit of a backend whose scheduler
        /// does not enforce one counts from here.
        public var submittedAt: Double?
    }

    /// The backend that ran the jobs (`slurm`).
    public var backend: String
    public var submissions: [Submission] = []

    public init(backend: String) { self.backend = backend }

    /// `<logs>/execution.json`.
    public static func path(logs: String) -> String { logs + "/execution.json" }

    /// The record in `logs`, nil when there is none or it cannot be read.
    public static func load(logs: String) -> ExecutionRecord? {
        guard let data = FileManager.default.contents(atPath: path(logs: logs)) else { return nil }
        return try? JSONDecoder().decode(ExecutionRecord.self, from: data)
    }

    /// Writes the record atomically (temporary file, fsync, rename).
    public func save(logs: String) throws(RestoreError) {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try FileSystemSteps.writeAtomically(try encoder.encode(self), to: Self.path(logs: logs))
        } catch let error as RestoreError {
            throw error
        } catch {
            throw RestoreError(.casaFailed, "cannot write the execution checkpoint in \(logs): \(error)", step: .casa)
        }
    }

    /// What the status file shows: the backend, every job id, the newest job's state.
    public var status: ExecutionStatus {
        ExecutionStatus(
            backend: backend, jobIds: submissions.compactMap(\.jobId), state: submissions.last?.state ?? "submitting")
    }
}

/// What `run_job.sh` writes when the program has ended.
public struct JobExitRecord: Codable, Sendable, Hashable {
    /// The program's exit status; 128 + N when signal N killed it.
    public var status: Int32
    /// The node it ran on.
    public var host: String?
    /// Start and end, seconds since the epoch.
    public var started: Double?
    public var ended: Double?

    /// The record at `path`; nil when it does not exist (yet) or is incomplete.
    public static func read(_ path: String) -> JobExitRecord? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(JobExitRecord.self, from: data)
    }

    /// As a CASA exit status (a shell reports death by signal N as 128 + N).
    public var exitStatus: CASAExitStatus {
        status > 128 && status < 160 ? .signalled(status - 128) : .exited(status)
    }
}
