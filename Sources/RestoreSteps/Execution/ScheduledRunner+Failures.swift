internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// How a batch job that did not succeed becomes a restore error: the scheduler's cause and reason, the hint an
/// operator can act on, and the exit status when the job left no exit record.
extension ScheduledRunner {
    static func error(cause: BatchStopCause, message: String, submissions: Int, max: Int) -> RestoreError {
        switch cause {
        case .timeLimit:
            RestoreError(
                .jobTimeLimit, message,
                hint: "Raise execution.slurm.timeLimit (or casa.timeoutSeconds), or ask for more cores (cpusPerTask).",
                step: .casa)
        case .outOfMemory:
            RestoreError(.jobOutOfMemory, message, hint: "Raise execution.slurm.memory.", step: .casa)
        case .nodeFailure:
            RestoreError(
                .jobNodeFailure, message + " (submitted \(submissions) of agent.maxAttempts = \(max) times)",
                hint: "Check the cluster's nodes (`sinfo -R`).", step: .casa)
        case .preempted:
            RestoreError(
                .jobPreempted, message + " (submitted \(submissions) of agent.maxAttempts = \(max) times)",
                hint: "Use a partition or QOS without preemption (execution.slurm.partition, extraArguments).",
                step: .casa)
        case .cancelled:
            RestoreError(
                .jobCancelled, message,
                hint: "Someone cancelled the job with the scheduler (scancel); drop the request again to restore it.",
                step: .casa)
        case .other:
            RestoreError(.jobFailed, message, hint: "See the scheduler's logs for the job.", step: .casa)
        }
    }

    /// Slurm's memory-kill line in the job's output file (its last 64 KiB), if any.
    static func memoryKill(output path: String) -> String? {
        guard let reader = FileReader(path: path) else { return nil }
        let size = reader.size
        guard let data = reader.readToEnd(from: size > 65536 ? size - 65536 : 0) else { return nil }
        return SlurmText.memoryKill(jobOutput: String(decoding: data, as: UTF8.self))
    }

    /// Slurm's `ExitCode=<code>:<signal>` as an exit status (used only when the job left no exit record).
    static func exitStatus(schedulerExitCode: String?) -> CASAExitStatus {
        let parts = (schedulerExitCode ?? "").split(separator: ":").compactMap { Int32($0) }
        if parts.count == 2, parts[1] != 0 { return .signalled(parts[1]) }
        return .exited(parts.first ?? -1)
    }
}

extension RestoreError.Code {
    /// The batch job could not be submitted (`sbatch` failed three times).
    public static let jobSubmitFailed: Self = "jobSubmitFailed"
    /// The scheduler stopped the job at its time limit.
    public static let jobTimeLimit: Self = "jobTimeLimit"
    /// The scheduler stopped the job for exceeding its memory.
    public static let jobOutOfMemory: Self = "jobOutOfMemory"
    /// The job's node failed, on every submission (`agent.maxAttempts`).
    public static let jobNodeFailure: Self = "jobNodeFailure"
    /// The job was preempted, on every submission (`agent.maxAttempts`).
    public static let jobPreempted: Self = "jobPreempted"
    /// Someone cancelled the job with the scheduler.
    public static let jobCancelled: Self = "jobCancelled"
    /// The scheduler ended the job for another reason.
    public static let jobFailed: Self = "jobFailed"
    /// The scheduler no longer knows the job and it left no exit record, or the scheduler does not answer.
    public static let jobLost: Self = "jobLost"
}
