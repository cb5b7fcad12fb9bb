internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Subprocess
internal import SystemPackage

/// Slurm through its own commands (`sbatch`, `squeue`, `scontrol`, `sacct`, `scancel`), run without a shell with
/// an environment built from nothing: `PATH` and `SLURM_CONF` of the agent (the cluster's configuration, when it
/// is not in the default place), `LANG=C.UTF-8`. Each command gets a deadline (`commandTimeout`): a controller
/// that does not answer is an error, never a hang.
///
/// Tracking: `scontrol show job` while the controller remembers the job (`MinJobAge` after it ended), then
/// `sacct` where accounting exists; beyond both, nil — the caller reads the job's own exit record.
public struct SlurmScheduler: BatchScheduler {
    public let backendName = "slurm"
    public var settings: SlurmSettings
    /// Deadline of each Slurm command.
    public var commandTimeout: Duration
    private let environment: [String: String]

    /// - Parameter environment: the agent's environment (only `PATH` and `SLURM_CONF` are passed on); nil: this
    ///   process's.
    public init(settings: SlurmSettings, commandTimeout: Duration = .seconds(60), environment: [String: String]? = nil)
    {
        self.settings = settings
        self.commandTimeout = commandTimeout
        let environment = environment ?? ProcessInfo.processInfo.environment
        var env = ["LANG": "C.UTF-8", "PATH": environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"]
        if let conf = environment["SLURM_CONF"] { env["SLURM_CONF"] = conf }
        self.environment = env
    }

    public func submit(_ job: BatchJobSpec) async throws(SchedulerError) -> String {
        let argv = ["sbatch"] + SlurmText.sbatchArguments(job, settings: settings)
        let result = try await run(argv)
        guard result.status == 0 else {
            throw SchedulerError(command: argv, message: result.errorText, exitStatus: result.status)
        }
        guard let id = SlurmText.parsableJobId(result.output) else {
            throw SchedulerError(
                command: argv, message: "no job id in sbatch's answer \"\(result.output.prefix(200))\"", exitStatus: 0)
        }
        return id
    }

    public func jobs(named name: String) async throws(SchedulerError) -> [String] {
        let argv = ["squeue", "--noheader", "--states=all", "--name=\(name)", "--format=%i"]
        let result = try await run(argv)
        guard result.status == 0 else {
            throw SchedulerError(command: argv, message: result.errorText, exitStatus: result.status)
        }
        return result.output.split(whereSeparator: \.isNewline).map { $0.trimmingWhitespace() }
            .filter { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
            .sorted { (Int($0) ?? 0) < (Int($1) ?? 0) }
    }

    public func state(of id: String) async throws(SchedulerError) -> BatchJobState? {
        let argv = ["scontrol", "--oneliner", "show", "job", id]
        let result = try await run(argv)
        if result.status == 0, let state = SlurmText.state(scontrolLine: result.output) { return state }
        guard result.errorText.contains("Invalid job id") else {
            throw SchedulerError(command: argv, message: result.errorText, exitStatus: result.status)
        }
        // The controller forgot the job (MinJobAge): accounting, where it exists, still knows it.
        let sacct = [
            "sacct", "--noheader", "--parsable2", "--allocations", "--jobs=\(id)", "--format=JobID,State,ExitCode",
        ]
        guard let answer = try? await run(sacct), answer.status == 0 else { return nil }
        return answer.output.split(whereSeparator: \.isNewline).lazy.compactMap {
            SlurmText.state(sacctLine: String($0))
        }.first
    }

    public func cancel(_ id: String) async throws(SchedulerError) {
        let argv = ["scancel", id]
        let result = try await run(argv)
        guard result.status == 0 else {
            throw SchedulerError(command: argv, message: result.errorText, exitStatus: result.status)
        }
    }

    struct CommandResult {
        var status: Int32
        var output: String
        var error: String
        var errorText: String {
            let text = error.trimmingWhitespaceAndNewlines()
            return text.isEmpty ? "(no message)" : text
        }
    }

    /// Runs `argv` (its program looked up on `PATH`) with the deadline.
    func run(_ argv: [String]) async throws(SchedulerError) -> CommandResult {
        guard let program = Self.lookUp(argv[0], path: environment["PATH"] ?? "") else {
            throw SchedulerError(
                command: argv,
                message: "\(argv[0]) not found on PATH \(environment["PATH"] ?? "") (is slurm-client installed?)")
        }
        var keyed: [Environment.Key: String] = [:]
        for (key, value) in environment { if let k = Environment.Key(rawValue: key) { keyed[k] = value } }
        let env = keyed
        let arguments = Array(argv.dropFirst())
        let limit = commandTimeout
        do {
            return try await withThrowingTaskGroup(of: CommandResult?.self) { group in
                group.addTask {
                    let r = try await Subprocess.run(
                        .path(FilePath(program)), arguments: Arguments(arguments), environment: .custom(env),
                        input: .none, output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
                    let status: Int32 =
                        switch r.terminationStatus {
                        case .exited(let code): code
                        case .signaled(let signal): 128 + signal
                        }
                    return CommandResult(status: status, output: r.standardOutput, error: r.standardError)
                }
                group.addTask {
                    try await Task.sleep(for: limit)
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                guard let first else {
                    throw SchedulerError(command: argv, message: "no answer within \(limit) (is the controller up?)")
                }
                return first
            }
        } catch let error as SchedulerError {
            throw error
        } catch is CancellationError {
            throw SchedulerError(command: argv, message: "cancelled")
        } catch {
            throw SchedulerError(command: argv, message: "could not run: \(error)")
        }
    }

    static func lookUp(_ name: String, path: String) -> String? {
        if name.contains("/") { return FileManager.default.isExecutableFile(atPath: name) ? name : nil }
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
