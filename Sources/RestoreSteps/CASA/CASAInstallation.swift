/// One CASA installation the agent is configured to use.
///
/// Two kinds exist: a monolithic CASA tarball with the ALMA pipeline (run through `runpipeline.py`, the way the
/// archive's own restores run) and a modular CASA venv from PyPI (run through the repository's
/// `casa/restore_mous.py`). A request can only *name* one of these; it can never choose an executable.
///
/// Defaults (applied when decoding leaves a field out, and by the initialiser):
/// - `runpipeline`: `<home>/pipeline/pipeline/runpipeline.py` (pipeline kind). Monolithic CASA 6 releases often keep
///   it under `<home>/lib/py/lib/python3.*/site-packages/pipeline/runpipeline.py`; configure it then.
/// - `scriptDir` (`SCIPIPE_SCRIPTDIR`): `<home>/pipeline/pipeline/recipes`.
/// - `xvfbRun`: `xvfb-run`, looked up on the child's `PATH`; `useXvfb`: true for pipeline, false for modular.
/// - `programDir`: nil — the modular runner then needs it from the agent configuration.
/// - `path` (the child's `PATH`): `/usr/local/bin:/usr/bin:/bin`.
public struct CASAInstallation: Sendable, Codable, Hashable {
    /// How the installation is run.
    public enum Kind: String, Sendable, Codable, Hashable {
        /// Monolithic CASA with the ALMA pipeline: `casa --nogui --nologger [--pipeline] -c runpipeline.py PPR`.
        case pipeline
        /// Modular CASA in a Python venv: `<venv>/bin/python3 restore_mous.py PPR`.
        case modular
    }

    /// The name requests and the configuration use for this installation.
    public var name: String
    /// How it is run.
    public var kind: Kind
    /// `casaHome` for the pipeline kind (holds `bin/casa`); the venv directory for the modular kind.
    public var home: String
    /// The CASA version, e.g. `6.5.4-9` or `5.1.1-5`; a version starting with `5.` adds `--pipeline`.
    public var version: String
    /// `runpipeline.py` (pipeline kind).
    public var runpipeline: String
    /// `SCIPIPE_SCRIPTDIR` (pipeline kind): the recipes directory.
    public var scriptDir: String
    /// The directory holding `restore_mous.py` and `casaenv.py` (modular kind).
    public var programDir: String?
    /// The `xvfb-run` program (a path, or a name looked up on ``path``).
    public var xvfbRun: String
    /// Whether CASA is started under `xvfb-run -a`.
    public var useXvfb: Bool
    /// The child's `PATH`.
    public var path: String
    /// Extra environment variables for CASA (site needs such as `FLUX_SERVICE_URL`); `DISPLAY` is never passed and
    /// the runner's own variables (`SCIPIPE_*`, `CASASITECONFIG`, …) take precedence.
    public var extraEnvironment: [String: String]

    /// The default `PATH` given to CASA.
    public static let defaultPath = "/usr/local/bin:/usr/bin:/bin"

    /// Creates an installation description; `nil` arguments take the documented defaults.
    public init(
        name: String, kind: Kind, home: String, version: String, runpipeline: String? = nil,
        scriptDir: String? = nil, programDir: String? = nil, xvfbRun: String? = nil, useXvfb: Bool? = nil,
        path: String? = nil, extraEnvironment: [String: String] = [:]
    ) {
        self.name = name
        self.kind = kind
        self.home = home
        self.version = version
        self.runpipeline = runpipeline ?? CASAInstallation.join(home, "pipeline/pipeline/runpipeline.py")
        self.scriptDir = scriptDir ?? CASAInstallation.join(home, "pipeline/pipeline/recipes")
        self.programDir = programDir
        self.xvfbRun = xvfbRun ?? "xvfb-run"
        self.useXvfb = useXvfb ?? (kind == .pipeline)
        self.path = path ?? CASAInstallation.defaultPath
        self.extraEnvironment = extraEnvironment
    }

    private enum CodingKeys: String, CodingKey {
        case name, kind, home, version, runpipeline, scriptDir, programDir, xvfbRun, useXvfb, path, extraEnvironment
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            name: try c.decode(String.self, forKey: .name),
            kind: try c.decode(Kind.self, forKey: .kind),
            home: try c.decode(String.self, forKey: .home),
            version: try c.decode(String.self, forKey: .version),
            runpipeline: try c.decodeIfPresent(String.self, forKey: .runpipeline),
            scriptDir: try c.decodeIfPresent(String.self, forKey: .scriptDir),
            programDir: try c.decodeIfPresent(String.self, forKey: .programDir),
            xvfbRun: try c.decodeIfPresent(String.self, forKey: .xvfbRun),
            useXvfb: try c.decodeIfPresent(Bool.self, forKey: .useXvfb),
            path: try c.decodeIfPresent(String.self, forKey: .path),
            extraEnvironment: try c.decodeIfPresent([String: String].self, forKey: .extraEnvironment) ?? [:]
        )
    }

    /// Whether this is CASA 5 (whose pipeline tasks exist only with `--pipeline`).
    public var isCASA5: Bool { version.hasPrefix("5.") }

    /// `<home>/bin/casa`.
    public var casaExecutable: String { CASAInstallation.join(home, "bin/casa") }

    static func join(_ dir: String, _ rest: String) -> String {
        dir.hasSuffix("/") ? dir + rest : dir + "/" + rest
    }
}
