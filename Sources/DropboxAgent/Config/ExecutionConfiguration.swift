import FoundationEssentials
import Glibc
import RestoreSteps

/// `execution`: where step 5 runs CASA — `local` (a child process group of the agent, the default) or `slurm`
/// (a batch job per request; see ``ScheduledRunner``).
struct ExecutionConfiguration: Codable, Sendable {
    var backend: ExecutionBackendKind = .local
    var slurm = SlurmConfiguration()

    enum CodingKeys: String, CodingKey, CaseIterable { case backend, slurm }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let name = try c.decodeIfPresent(String.self, forKey: .backend) {
            guard let kind = ExecutionBackendKind(rawValue: name) else {
                let known = ExecutionBackendKind.allCases.map(\.rawValue)
                let hint =
                    known.first { $0.lowercased() == name.lowercased() }.map { " (did you mean \"\($0)\"?)" } ?? ""
                throw ConfigurationError(
                    path: "$.execution.backend",
                    message: "must be one of \(known.joined(separator: ", ")), not \"\(name)\"\(hint)")
            }
            backend = kind
        }
        slurm = try c.value(.slurm, default: SlurmConfiguration())
    }
}

/// `execution.slurm` (see ``SlurmSettings``): unknown keys are errors, numbers are checked, `extraArguments` must
/// be a list of strings (one argv element each: a shell string is refused, not split).
struct SlurmConfiguration: Codable, Sendable {
    var partition: String?
    var account: String?
    var cpusPerTask: Int?
    var memory: String?
    var timeLimit: String?
    var extraArguments: [String] = []
    var pollSeconds: Double = 5

    enum CodingKeys: String, CodingKey, CaseIterable {
        case partition, account, cpusPerTask, memory, timeLimit, extraArguments, pollSeconds
    }

    init() {}

    /// What the restore steps are given.
    var settings: SlurmSettings {
        SlurmSettings(
            partition: partition, account: account, cpusPerTask: cpusPerTask, memory: memory, timeLimit: timeLimit,
            extraArguments: extraArguments, pollSeconds: pollSeconds)
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let path = "$.execution.slurm."
        partition = try c.decodeIfPresent(String.self, forKey: .partition)
        account = try c.decodeIfPresent(String.self, forKey: .account)
        cpusPerTask = try c.decodeIfPresent(Int.self, forKey: .cpusPerTask)
        memory = try c.decodeIfPresent(String.self, forKey: .memory)
        timeLimit = try c.decodeIfPresent(String.self, forKey: .timeLimit)
        do {
            extraArguments = try c.decodeIfPresent([String].self, forKey: .extraArguments) ?? []
        } catch {
            throw ConfigurationError(
                path: path + "extraArguments",
                message:
                    "must be a list of strings, one sbatch argument each (never a shell string), e.g. [\"--qos=long\", \"--constraint=ssd\"]"
            )
        }
        pollSeconds = try c.value(.pollSeconds, default: 5.0)
        if let cpus = cpusPerTask, cpus < 1 {
            throw ConfigurationError(path: path + "cpusPerTask", message: "must be at least 1, not \(cpus)")
        }
        if !(pollSeconds >= 0.2 && pollSeconds <= 600) {
            throw ConfigurationError(
                path: path + "pollSeconds", message: "must be between 0.2 and 600, not \(pollSeconds)")
        }
        for (key, value) in [
            ("partition", partition), ("account", account), ("memory", memory), ("timeLimit", timeLimit),
        ] {
            if let value, value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "=" }) {
                throw ConfigurationError(
                    path: path + key, message: "must be one word without spaces or \"=\", not \"\(value)\"")
            }
        }
        for (i, argument) in extraArguments.enumerated() where !argument.hasPrefix("-") {
            throw ConfigurationError(
                path: path + "extraArguments[\(i)]",
                message:
                    "\"\(argument)\" is not an option (each element is one sbatch option such as \"--qos=long\"; the job script is the agent's)"
            )
        }
    }
}
