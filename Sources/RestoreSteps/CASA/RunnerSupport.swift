internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Logging

/// What both runners share: the clean child environment, executable lookup, preconditions and the result.
enum RunnerSupport {
    /// The child's environment, built from nothing (never the agent's own environment):
    /// `PATH` (the installation's), `LANG=C.UTF-8`, `HOME=<logs>/home` (private, created), then the installation's
    /// extra variables, then the runner's own variables (which win). `DISPLAY` is always removed (xvfb-run sets its
    /// own).
    static func environment(
        installation: CASAInstallation, invocation: CASAInvocation, runnerVariables: [String: String]
    ) throws(RestoreError) -> [String: String] {
        let home = CASAInstallation.join(invocation.logsDirectory, "home")
        do {
            try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        } catch {
            throw RestoreError(
                .casaFailed, "Cannot create CASA's private HOME \(home): \(error)",
                hint: "Check that the logs directory is writable.", step: .casa)
        }
        var env: [String: String] = ["PATH": installation.path, "LANG": "C.UTF-8", "HOME": home]
        env.merge(installation.extraEnvironment) { _, new in new }
        env.merge(runnerVariables) { _, new in new }
        env["DISPLAY"] = nil
        return env
    }

    /// `program` as an absolute path: kept if it holds a `/` (made absolute), else looked up on `path`.
    static func resolveExecutable(_ program: String, path: String) throws(RestoreError) -> String {
        if program.contains("/") {
            let absolute =
                program.hasPrefix("/")
                ? program : CASAInstallation.join(FileManager.default.currentDirectoryPath, program)
            guard FileManager.default.isExecutableFile(atPath: absolute) else {
                throw RestoreError(
                    .casaUnavailable, "\(absolute) is not an executable file.",
                    hint: "Fix the CASA installation or its entry in the agent configuration.", step: .casa)
            }
            return absolute
        }
        for dir in path.split(separator: ":") where !dir.isEmpty {
            let candidate = CASAInstallation.join(String(dir), program)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw RestoreError(
            .casaUnavailable, "\(program) was not found on PATH \(path).",
            hint: "Install it (e.g. apt-get install xvfb for xvfb-run) or configure its absolute path.",
            step: .casa)
    }

    /// Throws `casaUnavailable` unless `path` exists (as a directory when `directory` is set).
    static func require(_ path: String, directory: Bool = false, what: String) throws(RestoreError) {
        var isDirectory = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
            isDirectory == directory
        else {
            throw RestoreError(
                .casaUnavailable, "\(what) \(path) does not exist.",
                hint: "Fix the CASA installation or its entry in the agent configuration.", step: .casa)
        }
    }

    /// Checks the invocation's paths: an absolute PPR that exists, and an existing working directory.
    static func checkInvocation(_ invocation: CASAInvocation) throws(RestoreError) {
        guard invocation.ppr.hasPrefix("/") else {
            throw RestoreError(.internalError, "The PPR path \(invocation.ppr) is not absolute.", step: .casa)
        }
        try require(invocation.ppr, what: "The PPR")
        try require(invocation.workingDirectory, directory: true, what: "The working directory")
        do {
            try FileManager.default.createDirectory(atPath: invocation.logsDirectory, withIntermediateDirectories: true)
        } catch {
            throw RestoreError(
                .casaFailed, "Cannot create the logs directory \(invocation.logsDirectory): \(error)",
                step: .casa)
        }
    }

    /// The `casa-*.log` files in `working`, absolute and sorted.
    static func casaLogs(in working: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: working)) ?? []
        return names.filter { $0.hasPrefix("casa-") && $0.hasSuffix(".log") }.sorted()
            .map { CASAInstallation.join(working, $0) }
    }

    /// Clears what an earlier attempt left, so a re-run is judged on its own: moves `casa-*.log` and
    /// `errorexit-*.txt` from `working/` (and `errorexit-*.txt` from `products/`) into
    /// `working/previous-attempt-<UTC yyyyMMdd'T'HHmmss>/`, and removes the expected `<name>.ms` and
    /// `<name>.ms.flagversions` (importasdm refuses to overwrite an MS). Returns the archive directory, if one
    /// was needed.
    @discardableResult
    static func clearPreviousAttempt(_ invocation: CASAInvocation) throws(RestoreError) -> String? {
        let fm = FileManager.default
        let working = invocation.workingDirectory
        let products = invocation.productsDirectory
        let stale =
            casaLogs(in: working) + CASASuccessCheck.errorExitMarkers(in: working)
            + CASASuccessCheck.errorExitMarkers(in: products)
        var archive: String?
        do {
            if !stale.isEmpty {
                var dir = CASAInstallation.join(working, "previous-attempt-" + UTCTime(Date()).compactDescription)
                var n = 1
                while fm.fileExists(atPath: dir) {
                    n += 1
                    dir = CASAInstallation.join(
                        working, "previous-attempt-" + UTCTime(Date()).compactDescription + "-\(n)")
                }
                try fm.createDirectory(atPath: dir, withIntermediateDirectories: true)
                for file in stale {
                    var target = CASAInstallation.join(dir, PathString.lastComponent(file))
                    if fm.fileExists(atPath: target) { target += ".products" }
                    try fm.moveItem(atPath: file, toPath: target)
                }
                archive = dir
            }
            for name in invocation.asdmNames {
                for suffix in [".ms", ".ms.flagversions"] {
                    let path = CASAInstallation.join(working, name + suffix)
                    if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
                }
            }
        } catch {
            throw RestoreError(
                .casaFailed, "Cannot clear the previous CASA attempt in \(working): \(error)",
                hint: "Check the permissions of the working directory.", step: .casa)
        }
        return archive
    }

    /// Starts CASA for `invocation` after moving a previous attempt's logs and markers aside, and runs it to the
    /// end (or timeout, or cancellation) — the part both runners share.
    static func launch(
        executable: String, arguments: [String], environment: [String: String], installation: CASAInstallation,
        invocation: CASAInvocation, gracePeriod: Duration, reporter: any StepReporter, logger: Logger
    ) async throws -> CASARunResult {
        let process = CASAProcess(
            executable: executable, arguments: arguments, environment: environment,
            workingDirectory: invocation.workingDirectory,
            stdoutLog: CASAInstallation.join(invocation.logsDirectory, "casa-stdout.log"),
            timeout: invocation.timeout, gracePeriod: gracePeriod)
        var logger = logger
        logger[metadataKey: "casa.installation"] = .string(installation.name)
        if let archive = try clearPreviousAttempt(invocation) {
            logger.notice(
                "moved the previous attempt's CASA logs and markers aside", metadata: ["casa.archive": .string(archive)]
            )
        }
        return try await run(process, invocation: invocation, reporter: reporter, logger: logger)
    }

    /// Runs `process` and assembles the result.
    static func run(
        _ process: CASAProcess, invocation: CASAInvocation, reporter: any StepReporter,
        logger: Logging.Logger
    ) async throws -> CASARunResult {
        let outcome = try await process.run(reporter: reporter, logger: logger)
        return CASARunResult(
            exitStatus: outcome.exitStatus, timedOut: outcome.timedOut, duration: outcome.duration,
            argv: [process.executable] + process.arguments, environment: process.environment,
            stdoutLog: process.stdoutLog, casaLogs: casaLogs(in: invocation.workingDirectory))
    }
}
