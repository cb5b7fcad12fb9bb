/// What a CASA runner is asked to run: one restore PPR in a prepared working tree.
public struct CASAInvocation: Sendable, Hashable {
    /// Absolute path of the restore PPR (SciPipeRequest XML).
    public var ppr: String
    /// `SCIPIPE_ROOTDIR`: the directory the PPR's `RelativePath` is relative to.
    public var root: String
    /// The PPR's `RelativePath` (the MOUS directory holding `rawdata/`, `working/`, `products/`).
    public var relativePath: String
    /// The working directory CASA runs in (`<root>/<relativePath>/working`).
    public var workingDirectory: String
    /// Where the runner writes `casa-stdout.log` (and `SCIPIPE_LOGDIR`, the private `HOME`).
    public var logsDirectory: String
    /// How long CASA may run before it is stopped.
    public var timeout: Duration
    /// The `AsdmDiskName`s of the PPR (the measurement sets expected afterwards).
    public var asdmNames: [String]
    /// The ``CASAArchiveLimits`` file the restore program unpacks the calibration tarballs with (modular runner:
    /// `--archive-limits FILE`); nil: the program's defaults, the same as ``ArchiveLimits``'.
    public var archiveLimitsFile: String?

    /// Creates an invocation; `workingDirectory` defaults to `<root>/<relativePath>/working`.
    public init(
        ppr: String, root: String, relativePath: String, workingDirectory: String? = nil, logsDirectory: String,
        timeout: Duration, asdmNames: [String], archiveLimitsFile: String? = nil
    ) {
        self.ppr = ppr
        self.root = root
        self.relativePath = relativePath
        self.workingDirectory =
            workingDirectory
            ?? CASAInstallation.join(CASAInstallation.join(root, relativePath), "working")
        self.logsDirectory = logsDirectory
        self.timeout = timeout
        self.asdmNames = asdmNames
        self.archiveLimitsFile = archiveLimitsFile
    }

    /// `<root>/<relativePath>/products`.
    public var productsDirectory: String {
        CASAInstallation.join(CASAInstallation.join(root, relativePath), "products")
    }
}

/// How the CASA process ended.
public enum CASAExitStatus: Sendable, Hashable, Codable, CustomStringConvertible {
    /// It exited with this code.
    case exited(Int32)
    /// A signal killed it.
    case signalled(Int32)

    /// Whether it exited with code 0.
    public var isSuccess: Bool { self == .exited(0) }

    public var description: String {
        switch self {
        case .exited(let code): "exit status \(code)"
        case .signalled(let signal): "killed by signal \(signal)"
        }
    }
}

/// What a CASA run left behind, for the success checks and the records.
public struct CASARunResult: Sendable, Hashable, Codable {
    /// How the process ended (the top process: `xvfb-run`, `casa` or the venv python).
    public var exitStatus: CASAExitStatus
    /// Whether the runner stopped it at the time limit.
    public var timedOut: Bool
    /// Wall-clock run time.
    public var duration: Duration
    /// The argv, exactly as started (argv[0] resolved to an absolute path).
    public var argv: [String]
    /// The whole environment CASA was given (as logged).
    public var environment: [String: String]
    /// `<logs>/casa-stdout.log`: CASA's standard output and standard error, interleaved.
    public var stdoutLog: String
    /// The `casa-*.log` files in `working/` after the run (absolute paths, sorted).
    public var casaLogs: [String]

    public init(
        exitStatus: CASAExitStatus, timedOut: Bool, duration: Duration, argv: [String], environment: [String: String],
        stdoutLog: String, casaLogs: [String]
    ) {
        self.exitStatus = exitStatus
        self.timedOut = timedOut
        self.duration = duration
        self.argv = argv
        self.environment = environment
        self.stdoutLog = stdoutLog
        self.casaLogs = casaLogs
    }
}

/// Runs CASA on a restore PPR. Implementations: ``PipelineRunner`` (monolithic CASA + ALMA pipeline) and
/// ``ModularRunner`` (modular CASA venv + `restore_mous.py`).
///
/// A runner only runs; it does not judge. Judge the result with ``CASASuccessCheck/evaluate(result:working:products:expectedAsdmNames:)``
/// — never by the exit status alone.
public protocol CASARunner: Sendable {
    /// Runs CASA and waits for it (and everything it started) to end.
    ///
    /// Before starting, a previous attempt's traces are cleared so the run is judged on its own: `casa-*.log`
    /// and `errorexit-*.txt` in `working/` (and `errorexit-*.txt` in `products/`) move to
    /// `working/previous-attempt-<UTC time>/`, and the expected `<AsdmDiskName>.ms` and `.ms.flagversions` are
    /// removed.
    ///
    /// On timeout the whole process group is stopped (SIGTERM, grace period, SIGKILL) and a result with
    /// ``CASARunResult/timedOut`` set is returned. On task cancellation the same happens and `CancellationError` is
    /// thrown. `PROGRESS <done> <total> <text>` lines on CASA's standard output are passed to `reporter`.
    ///
    /// - Throws: ``RestoreError`` (`casaUnavailable`, `casaFailed`) when CASA cannot be started;
    ///   `CancellationError` when cancelled.
    func run(_ invocation: CASAInvocation, reporter: any StepReporter) async throws -> CASARunResult
}

/// The CASA command a runner would start: the program (absolute), its arguments and its whole environment. The
/// local backend starts it as a child process group; a scheduled backend (``ScheduledRunner``) hands it to a batch job.
public struct CASACommand: Sendable, Hashable {
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]

    public init(executable: String, arguments: [String], environment: [String: String]) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
    }
}

/// A runner whose command can also be run elsewhere (by a batch scheduler).
public protocol CASACommandRunner: CASARunner {
    /// The program, arguments and environment for `invocation`, after checking that they exist.
    func command(for invocation: CASAInvocation) throws(RestoreError) -> CASACommand
}
