public import Logging

/// Runs a monolithic CASA with the ALMA pipeline on a restore PPR, as the archive's own restores do
/// (INTERFACES §4):
///
/// `xvfb-run -a <home>/bin/casa --nogui --nologger [--pipeline] -c <runpipeline.py> <PPR>`
///
/// `--pipeline` only for CASA 5 (whose pipeline tasks exist only with it); without ``CASAInstallation/useXvfb`` the
/// `xvfb-run -a` prefix is left out. cwd is `working/`; the environment is clean (see ``CASAInstallation``) plus
/// `SCIPIPE_ROOTDIR`, `SCIPIPE_LOGDIR` (the logs directory) and `SCIPIPE_SCRIPTDIR`
/// (``CASAInstallation/scriptDir``), `HOME=<logs>/home`.
public struct PipelineRunner: CASACommandRunner {
    /// The installation (kind `.pipeline`).
    public let installation: CASAInstallation
    /// Time between SIGTERM and SIGKILL when CASA is stopped.
    public let gracePeriod: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - installation: the monolithic CASA to run.
    ///   - gracePeriod: time between SIGTERM and SIGKILL to the process group (default 10 s).
    ///   - logger: receives the argv, environment and outcome.
    public init(installation: CASAInstallation, gracePeriod: Duration = .seconds(10), logger: Logger) {
        self.installation = installation
        self.gracePeriod = gracePeriod
        self.logger = logger
    }

    /// The argv (argv[0] as configured, not yet resolved) for a PPR.
    public func arguments(ppr: String) -> [String] {
        var argv: [String] = []
        if installation.useXvfb { argv += [installation.xvfbRun, "-a"] }
        argv += [installation.casaExecutable, "--nogui", "--nologger"]
        if installation.isCASA5 { argv.append("--pipeline") }
        argv += ["-c", installation.runpipeline, ppr]
        return argv
    }

    public func run(_ invocation: CASAInvocation, reporter: any StepReporter) async throws -> CASARunResult {
        let command = try command(for: invocation)
        return try await RunnerSupport.launch(
            executable: command.executable, arguments: command.arguments, environment: command.environment,
            installation: installation,
            invocation: invocation, gracePeriod: gracePeriod, reporter: reporter, logger: logger)
    }

    /// The program, arguments and environment for `invocation`, after checking that they exist.
    public func command(for invocation: CASAInvocation) throws(RestoreError) -> CASACommand {
        try RunnerSupport.checkInvocation(invocation)
        try RunnerSupport.require(installation.casaExecutable, what: "The CASA program")
        try RunnerSupport.require(installation.runpipeline, what: "The pipeline runner runpipeline.py")
        var argv = arguments(ppr: invocation.ppr)
        argv[0] = try RunnerSupport.resolveExecutable(argv[0], path: installation.path)
        let environment = try RunnerSupport.environment(
            installation: installation, invocation: invocation,
            runnerVariables: [
                "SCIPIPE_ROOTDIR": invocation.root,
                "SCIPIPE_LOGDIR": invocation.logsDirectory,
                "SCIPIPE_SCRIPTDIR": installation.scriptDir,
            ])
        return CASACommand(executable: argv[0], arguments: Array(argv.dropFirst()), environment: environment)
    }
}
