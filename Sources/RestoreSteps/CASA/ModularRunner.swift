internal import FoundationEssentials
internal import Glibc
public import Logging

/// Runs the repository's restore program in a modular CASA venv (INTERFACES §3):
///
/// `<venv>/bin/python3 <programDir>/restore_mous.py --parallel <N> [--archive-limits <file>] <PPR>` (the file:
/// ``CASAInvocation/archiveLimitsFile``), cwd `working/`, environment `SCIPIPE_ROOTDIR`,
/// `SCIPIPE_LOGDIR`, `CASASITECONFIG=<venv>/casasiteconfig.py`, `HOME=<logs>/home` (private), `MPLBACKEND=Agg`,
/// `PATH`, `LANG=C.UTF-8`, `PYTHONUNBUFFERED=1` (so `PROGRESS` lines arrive as they are printed), no `DISPLAY`.
///
/// `restore_mous.py` restores each execution block in a CASA process of its own, up to `N` at a time
/// (``parallelExecBlocks``); its `PROGRESS` texts name the EB and the stage (`EB <disk>: applycal (1/2 EBs done)`).
public struct ModularRunner: CASACommandRunner {
    /// The installation (kind `.modular`; ``CASAInstallation/home`` is the venv).
    public let installation: CASAInstallation
    /// The directory holding `restore_mous.py` (the installation's ``CASAInstallation/programDir`` unless given).
    public let programDir: String
    /// Time between SIGTERM and SIGKILL when CASA is stopped.
    public let gracePeriod: Duration
    /// How many execution blocks are restored at once, each in its own CASA process (`--parallel`, at least 1).
    public let parallelExecBlocks: Int
    private let logger: Logger

    /// - Parameters:
    ///   - installation: the venv to use.
    ///   - programDir: the repository's `casa/` directory; defaults to ``CASAInstallation/programDir``, else `casa`
    ///     relative to the agent's working directory.
    ///   - gracePeriod: time between SIGTERM and SIGKILL to the process group (default 10 s).
    ///   - parallelExecBlocks: EB processes at once (default ``defaultParallelExecBlocks``; below 1 counts as 1).
    ///   - logger: receives the argv, environment and outcome.
    public init(
        installation: CASAInstallation, programDir: String? = nil, gracePeriod: Duration = .seconds(10),
        parallelExecBlocks: Int = ModularRunner.defaultParallelExecBlocks, logger: Logger
    ) {
        self.installation = installation
        self.programDir = programDir ?? installation.programDir ?? "casa"
        self.gracePeriod = gracePeriod
        self.parallelExecBlocks = max(1, parallelExecBlocks)
        self.logger = logger
    }

    /// Half the active processor cores, at least 1 (`casa.parallelExecBlocks`' default).
    public static var defaultParallelExecBlocks: Int {
        max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
    }

    /// `<venv>/bin/python3`.
    public var python: String { CASAInstallation.join(installation.home, "bin/python3") }
    /// `<programDir>/restore_mous.py`.
    public var program: String { CASAInstallation.join(programDir, "restore_mous.py") }
    /// `<venv>/casasiteconfig.py`.
    public var siteConfig: String { CASAInstallation.join(installation.home, "casasiteconfig.py") }

    public func run(_ invocation: CASAInvocation, reporter: any StepReporter) async throws -> CASARunResult {
        let command = try command(for: invocation)
        return try await RunnerSupport.launch(
            executable: command.executable, arguments: command.arguments,
            environment: command.environment, installation: installation,
            invocation: invocation, gracePeriod: gracePeriod, reporter: reporter, logger: logger)
    }

    /// The program, arguments and environment for `invocation`, after checking that they exist.
    public func command(for invocation: CASAInvocation) throws(RestoreError) -> CASACommand {
        try RunnerSupport.checkInvocation(invocation)
        try RunnerSupport.require(installation.home, directory: true, what: "The CASA venv")
        try RunnerSupport.require(program, what: "The restore program")
        try RunnerSupport.require(siteConfig, what: "The CASA site configuration (run `dropbox-agent casa install`)")
        let executable = try RunnerSupport.resolveExecutable(python, path: installation.path)
        let environment = try RunnerSupport.environment(
            installation: installation, invocation: invocation,
            runnerVariables: [
                "SCIPIPE_ROOTDIR": invocation.root,
                "SCIPIPE_LOGDIR": invocation.logsDirectory,
                "CASASITECONFIG": siteConfig,
                "MPLBACKEND": "Agg",
                "PYTHONUNBUFFERED": "1",
            ])
        return CASACommand(
            executable: executable,
            arguments: [program, "--parallel", String(parallelExecBlocks)]
                + (invocation.archiveLimitsFile.map { ["--archive-limits", $0] } ?? []) + [invocation.ppr],
            environment: environment)
    }
}
