public import Logging
internal import Delivery
internal import FoundationEssentials
internal import Glibc
internal import Subprocess
internal import SystemPackage

/// The state of a modular CASA venv, as `casa/casaenv.py check` reports it.
public struct CASAEnvironmentStatus: Sendable, Codable, Hashable {
    /// Whether the venv is complete and `import casatools` works offline.
    public var ok: Bool
    /// The venv's Python version.
    public var python: String?
    /// The installed casatools version.
    public var casatools: String?
    /// The installed casatasks version.
    public var casatasks: String?
    /// The venv's CASA version (casatools').
    public var version: String?
    /// What is wrong, one line each.
    public var problems: [String]

    public init(
        ok: Bool, python: String? = nil, casatools: String? = nil, casatasks: String? = nil, version: String? = nil,
        problems: [String] = []
    ) {
        self.ok = ok
        self.python = python
        self.casatools = casatools
        self.casatasks = casatasks
        self.version = version ?? casatools
        self.problems = problems
    }
}

/// Installs and checks the modular CASA venv through the repository's `casa/casaenv.py` (INTERFACES §3); used by
/// `dropbox-agent casa install|check`.
public enum CASAEnvironment {
    /// Creates or updates the venv (idempotent; fast when already complete): `python3 casaenv.py install --venv DIR`.
    ///
    /// Runs with the agent's environment (pip may need a proxy or index configuration from it) and no time limit;
    /// cancellation stops the installer's process group.
    /// - Parameters:
    ///   - venv: the venv directory.
    ///   - programDir: the directory holding `casaenv.py` (the repository's `casa/`).
    ///   - version: the CASA version (casatools/casatasks) when not the one `casa/requirements.txt` pins.
    ///   - python: the Python that creates the venv (a name looked up on `PATH`, or a path).
    ///   - logger: receives the installer's output tail.
    /// - Throws: ``RestoreError`` `casaEnvironmentFailed` quoting the end of the installer's output.
    public static func install(
        venv: String, programDir: String, version: String? = nil, python: String = "python3", logger: Logger? = nil
    ) async throws {
        let script = CASAInstallation.join(programDir, "casaenv.py")
        try RunnerSupport.require(script, what: "The CASA environment manager")
        let run = try await runTool(
            python, [script, "install", "--venv", venv] + (version.map { ["--version", $0] } ?? []))
        logger?.info(
            "casaenv install finished",
            metadata: [
                "casa.venv": .string(venv), "casa.exitStatus": "\(run.status)", "casa.outputTail": .string(run.tail),
            ])
        guard run.status.isSuccess else {
            throw RestoreError(
                .casaEnvironmentFailed,
                "Installing the CASA environment in \(venv) failed (\(run.status)): \(lastLines(run.tail, 5))",
                hint:
                    "Run `python3 \(script) install --venv \(venv)\(version.map { " --version \($0)" } ?? "")` by hand to see the whole output."
            )
        }
    }

    /// Checks the venv: `python3 casaenv.py check --venv DIR`. Never throws: a check that cannot run is reported
    /// as `ok == false` with the reason in ``CASAEnvironmentStatus/problems``.
    public static func check(
        venv: String, programDir: String, python: String = "python3"
    ) async -> CASAEnvironmentStatus {
        let script = CASAInstallation.join(programDir, "casaenv.py")
        guard FileManager.default.fileExists(atPath: script) else {
            return CASAEnvironmentStatus(ok: false, problems: ["\(script) does not exist"])
        }
        let run: ToolRun
        do {
            run = try await runTool(python, [script, "check", "--venv", venv])
        } catch {
            return CASAEnvironmentStatus(ok: false, problems: ["cannot run \(script): \(error)"])
        }
        // The JSON object is the last line starting with "{" (warnings may precede it).
        let json = run.tail.split(separator: "\n").last { $0.hasPrefix("{") }
        guard let json, var status = try? JSONDecoder().decode(CASAEnvironmentStatus.self, from: Data(json.utf8)) else {
            return CASAEnvironmentStatus(
                ok: false, problems: ["casaenv.py check gave no status (\(run.status)): \(lastLines(run.tail, 3))"])
        }
        if status.ok && !run.status.isSuccess {
            status.ok = false
            status.problems.append("casaenv.py check ended with \(run.status)")
        }
        return status
    }

    /// The name of the stamp `casaenv.py install` writes into a complete venv.
    public static let stampName = ".casaenv-complete.json"

    /// Whether `casaenv.py install` completed in `venv` (its stamp exists); a cheap test, no Python started.
    public static func isComplete(venv: String) -> Bool {
        FileManager.default.fileExists(atPath: CASAInstallation.join(venv, stampName))
    }

    /// The CASA version installed in a modular venv: casatools' version from its `dist-info` directory (what
    /// `casaenv.py check` reports as `version`, read without starting Python); nil when none is installed.
    public static func installedVersion(venv: String) -> String? {
        let lib = CASAInstallation.join(venv, "lib")
        let pythons = ((try? FileManager.default.contentsOfDirectory(atPath: lib)) ?? []).filter {
            $0.hasPrefix("python3")
        }.sorted()
        for python in pythons {
            let site = lib + "/" + python + "/site-packages"
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: site)) ?? []
            for entry in entries.sorted() where entry.hasPrefix("casatools-") && entry.hasSuffix(".dist-info") {
                let version = String(entry.dropFirst("casatools-".count).dropLast(".dist-info".count))
                if CASAVersion(version) != nil { return version }
            }
        }
        return nil
    }

    /// The casatools version `<programDir>/requirements.txt` pins: what `casa install` creates by default.
    public static func pinnedVersion(programDir: String) -> String? {
        guard let data = FileManager.default.contents(atPath: CASAInstallation.join(programDir, "requirements.txt"))
        else { return nil }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let trimmed = line.trimmingWhitespace()
            if trimmed.hasPrefix("casatools==") { return String(trimmed.dropFirst("casatools==".count)) }
        }
        return nil
    }

    struct ToolRun {
        var status: CASAExitStatus
        /// The last 64 KiB of standard output and standard error (interleaved).
        var tail: String
    }

    private static func runTool(_ program: String, _ arguments: [String]) async throws -> ToolRun {
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(10))]
        let executable: Executable = program.contains("/") ? .path(FilePath(program)) : .name(program)
        let limit = 64 * 1024
        let result = try await Subprocess.run(
            executable, arguments: Arguments(arguments), environment: .inherit, platformOptions: options,
            input: .none, output: .sequence, error: .combinedWithOutput
        ) { execution in
            var tail: [UInt8] = []
            for try await buffer in execution.standardOutput {
                buffer.withUnsafeBytes { tail.append(contentsOf: $0) }
                if tail.count > 2 * limit { tail.removeFirst(tail.count - limit) }
            }
            if tail.count > limit { tail.removeFirst(tail.count - limit) }
            return String(decoding: tail, as: UTF8.self)
        }
        let status: CASAExitStatus
        switch result.terminationStatus {
        case .exited(let code): status = .exited(code)
        case .signaled(let signal): status = .signalled(signal)
        }
        return ToolRun(status: status, tail: result.closureResult)
    }

    private static func lastLines(_ text: String, _ count: Int) -> String {
        text.split(separator: "\n").suffix(count).joined(separator: " | ")
    }
}
