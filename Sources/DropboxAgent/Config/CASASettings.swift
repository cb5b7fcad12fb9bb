import FoundationEssentials
import Glibc
import RestoreSteps

/// `casa`: the installations a request may choose from, and the embedded modular one.
struct CASASettings: Codable, Sendable {
    /// Name of the installation used when the request does not choose (default `modular`).
    var defaultInstallation: String = "modular"
    /// Monolithic CASA + pipeline installations (kind `pipeline`) and extra modular ones: objects with
    /// `name`, `kind` (`pipeline`|`modular`), `home` (casaHome, or the venv), `version`, and optionally
    /// `runpipeline`, `scriptDir`, `programDir`, `xvfbRun`, `useXvfb`, `path`, `extraEnvironment`.
    var installations: [CASAInstallation] = []
    /// The embedded modular installation's virtual environment (default `<data>/casa-venv`).
    var modularVenv: String?
    /// Directory of `restore_mous.py`/`casaenv.py` (default: found next to the binary).
    var programDirectory: String?
    /// A CASA run longer than this is killed (whole process group) and the restore fails.
    var timeoutSeconds: Double = 48 * 3600
    /// Between SIGTERM and SIGKILL of the CASA process group.
    var killGraceSeconds: Double = 10
    /// Execution blocks the modular runner restores at once, each in its own CASA process (`restore_mous.py
    /// --parallel`); at least 1. Default (nil): half the cores, at least 1.
    var parallelExecBlocks: Int?
    /// Which CASA may restore tables made by the manifest's `casaversion`: `exact`, `sameMinor`, `newerAllowed`
    /// (default), `any`.
    var versionPolicy: CASAVersionPolicy = .default
    /// Create a modular venv of the manifest's CASA version on first use when none is installed, cached per
    /// version under `<data>/casa-venvs/<version>` (only versions PyPI has wheels of for this Python).
    var installOnDemand = false

    enum CodingKeys: String, CodingKey, CaseIterable {
        case defaultInstallation, installations, modularVenv, programDirectory, timeoutSeconds, killGraceSeconds
        case parallelExecBlocks, versionPolicy, installOnDemand
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = CASASettings()
        defaultInstallation = try c.value(.defaultInstallation, default: d.defaultInstallation)
        installations = try c.value(.installations, default: [])
        modularVenv = try c.decodeIfPresent(String.self, forKey: .modularVenv)
        programDirectory = try c.decodeIfPresent(String.self, forKey: .programDirectory)
        timeoutSeconds = try c.value(.timeoutSeconds, default: d.timeoutSeconds)
        killGraceSeconds = try c.value(.killGraceSeconds, default: d.killGraceSeconds)
        parallelExecBlocks = try c.decodeIfPresent(Int.self, forKey: .parallelExecBlocks)
        if let n = parallelExecBlocks, n < 1 {
            throw ConfigurationError(path: "$.casa.parallelExecBlocks", message: "must be at least 1, not \(n)")
        }
        if let text = try c.decodeIfPresent(String.self, forKey: .versionPolicy) {
            guard let policy = CASAVersionPolicy(rawValue: text) else {
                throw ConfigurationError(
                    path: "$.casa.versionPolicy",
                    message:
                        "must be one of \(CASAVersionPolicy.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\""
                )
            }
            versionPolicy = policy
        }
        installOnDemand = try c.value(.installOnDemand, default: d.installOnDemand)
    }
}
