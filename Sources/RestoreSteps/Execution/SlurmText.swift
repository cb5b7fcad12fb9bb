internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// What Slurm's commands print and are given, without running them: `sbatch`'s argv, `sbatch --parsable`'s answer,
/// `scontrol show job -o` lines, Slurm's state names. Pure; ``SlurmScheduler`` runs the commands.
public enum SlurmText {
    /// `sbatch`'s argv after the program name: `--parsable`, the job name, working directory, output file,
    /// `--no-requeue` (a job Slurm lost is submitted again by the agent, which counts the submissions against
    /// `agent.maxAttempts`), the configured resources, the extra arguments, then the script and its arguments.
    /// `--export=ALL` passes sbatch's own environment, which the agent builds from nothing (``SlurmScheduler``);
    /// CASA's environment is set by the job script's argv (`env -i`), so it does not depend on the node's.
    public static func sbatchArguments(_ job: BatchJobSpec, settings: SlurmSettings) -> [String] {
        var argv = [
            "--parsable", "--job-name=\(job.name)", "--chdir=\(job.workingDirectory)", "--output=\(job.output)",
            "--no-requeue", "--export=ALL", "--nodes=1", "--ntasks=1",
        ]
        if let partition = settings.partition { argv.append("--partition=\(partition)") }
        if let account = settings.account { argv.append("--account=\(account)") }
        if let cpus = settings.cpusPerTask { argv.append("--cpus-per-task=\(cpus)") }
        if let memory = settings.memory { argv.append("--mem=\(memory)") }
        argv.append("--time=\(settings.timeLimit ?? timeLimit(seconds: job.timeLimitSeconds))")
        argv += settings.extraArguments
        argv.append(job.script)
        argv += job.arguments
        return argv
    }

    /// Slurm keeps time limits in whole minutes: `seconds` rounded up, at least 1.
    public static func timeLimit(seconds: Int) -> String {
        String(max(1, (seconds + 59) / 60))
    }

    /// The job id from `sbatch --parsable` (`12345` or `12345;cluster`); nil when the output is not one.
    public static func parsableJobId(_ output: String) -> String? {
        let line = output.split(whereSeparator: \.isNewline).last.map(String.init) ?? ""
        let id = line.split(separator: ";").first.map { $0.trimmingWhitespace() } ?? ""
        return !id.isEmpty && id.allSatisfy(\.isNumber) ? id : nil
    }

    /// A job name Slurm and the shell-free argv accept: the prefix, the restore id and the submission number, with
    /// anything outside `[A-Za-z0-9._-]` replaced by `_`.
    public static func jobName(restoreId: String, submission: Int) -> String {
        let safe = String(restoreId.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
        return "dropbox-\(safe)-\(submission)"
    }

    /// The `Key=Value` fields of one `scontrol show job -o` line. Values run to the next space, which is enough
    /// for the fields read here (none of them holds spaces).
    public static func fields(_ line: String) -> [String: String] {
        var result: [String: String] = [:]
        for token in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let eq = token.firstIndex(of: "=") else { continue }
            let key = String(token[..<eq])
            if result[key] == nil { result[key] = String(token[token.index(after: eq)...]) }
        }
        return result
    }

    /// The state in an `scontrol show job -o` line; nil when the line has no `JobState`.
    public static func state(scontrolLine line: String) -> BatchJobState? {
        let f = fields(line)
        guard let state = f["JobState"] else { return nil }
        return BatchJobState(
            state: state, phase: phase(state), reason: f["Reason"], exitCode: f["ExitCode"],
            timeLimit: f["TimeLimit"], runTime: f["RunTime"])
    }

    /// The state in a `sacct -n -P -X -o JobID,State,ExitCode` line (`12|CANCELLED by 0|0:15`).
    public static func state(sacctLine line: String) -> BatchJobState? {
        let parts = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, let name = parts[1].split(separator: " ").first.map(String.init), !name.isEmpty else {
            return nil
        }
        return BatchJobState(
            state: name, phase: phase(name), reason: parts[1] == name ? nil : parts[1], exitCode: parts[2])
    }

    /// Slurm's reason when it killed a job for exceeding its memory, from the job's output file: slurmstepd's line
    /// (`… StepId=12.batch exceeded memory limit (324382720 > 104857600), being killed`). With
    /// `JobAcctGatherParams=OverMemoryKill` (memory enforced without cgroups) the job then ends `FAILED` with
    /// signal 9, not `OUT_OF_MEMORY` (which only the cgroup plugins set): this line is how it is told apart.
    public static func memoryKill(jobOutput: String) -> String? {
        jobOutput.split(whereSeparator: \.isNewline).first {
            $0.hasPrefix("slurmstepd") && ($0.contains("exceeded memory limit") || $0.contains("oom-kill event"))
        }.map { String($0).trimmingWhitespace() }
    }

    /// Slurm's job states (`man squeue`, JOB STATE CODES) as phases.
    public static func phase(_ state: String) -> BatchJobPhase {
        switch state.split(separator: " ").first.map(String.init) ?? state {
        case "PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESIZING", "SUSPENDED",
            "RESV_DEL_HOLD":
            .pending
        case "RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "STOPPED":
            .running
        case "COMPLETED", "FAILED", "SPECIAL_EXIT":
            .ended
        case "TIMEOUT", "DEADLINE": .stopped(.timeLimit)
        case "OUT_OF_MEMORY": .stopped(.outOfMemory)
        case "NODE_FAIL", "BOOT_FAIL": .stopped(.nodeFailure)
        case "PREEMPTED": .stopped(.preempted)
        case "CANCELLED": .stopped(.cancelled)
        default: .stopped(.other)
        }
    }
}
