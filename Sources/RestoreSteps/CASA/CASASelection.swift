internal import FoundationEssentials
internal import Glibc

/// The CASA a restore runs with, and the one that made its tables: recorded in `metadata.json` by step 1 (and
/// step 3, once the catalogue source's manifest is read), used by step 5, and said out loud in the status file,
/// the delivery README and the mail.
public struct ChosenCASA: Codable, Sendable, Hashable {
    /// The chosen installation's CASA version (`6.7.0.31`).
    public var version: String
    /// The manifest's `casaversion` (the CASA that made the tables); nil while the manifest has not been read, or
    /// when it does not say.
    public var manifestVersion: String?
    /// The chosen installation's name (`modular`, `pipeline-6.5.4`, `modular-6.6.5.31`).
    public var installation: String
    /// The policy the choice was checked against.
    public var policy: CASAVersionPolicy
    /// Whether the manifest has been read (step 1 for packages and the ALMA archive, step 3 for the catalogue).
    public var manifestRead: Bool
    /// The installation is a modular venv created on first use (`casa.installOnDemand`): step 5 creates it if it
    /// does not exist yet. Its home.
    public var createOnFirstUse: String?

    public init(
        version: String, manifestVersion: String?, installation: String, policy: CASAVersionPolicy, manifestRead: Bool,
        createOnFirstUse: String? = nil
    ) {
        self.version = version
        self.manifestVersion = manifestVersion
        self.installation = installation
        self.policy = policy
        self.manifestRead = manifestRead
        self.createOnFirstUse = createOnFirstUse
    }

    /// Whether the restoring CASA differs from the one that made the tables (only known once both are).
    public var versionsDiffer: Bool {
        guard let manifestVersion else { return false }
        if let a = CASAVersion(version), let b = CASAVersion(manifestVersion) { return a != b }
        return version != manifestVersion
    }

    /// The warning to show whenever the versions differ; nil when they agree or the manifest's is unknown.
    public var warning: String? {
        guard versionsDiffer, let manifestVersion else { return nil }
        return "The calibration tables were made with CASA \(manifestVersion) but are restored with CASA \(version) "
            + "(installation \"\(installation)\", allowed by casa.versionPolicy \(policy.rawValue)); results may differ slightly from the pipeline's own."
    }
}

/// Chooses the CASA installation for a restore and checks it against `casa.versionPolicy`.
///
/// Rules, in order:
/// 1. A request choice must name a configured installation: by ``CASAInstallation/name`` (native `casa` field), or
///    by ``CASAInstallation/home`` (the event's `casaHome`), compared after resolving symlinks and normalising the
///    path (`/opt/casa/`, `/opt/./casa` and a symlink to `/opt/casa` all match `/opt/casa`). Anything else is
///    rejected with `casaNotConfigured` before any work is done. A request never chooses an executable. Once the
///    manifest's `casaversion` is known, the requested installation must satisfy the policy (`casaVersionRefused`).
/// 2. Without a request choice and with the manifest's `casaversion` known: the installation of exactly that version
///    (compared by numeric components, so `6.5.4.9` matches `6.5.4-9`; the default first if it matches) — restoring
///    with the version that calibrated the data is the faithful choice. Else, with `casa.installOnDemand`, a modular
///    venv of that version created on first use. Else the default installation if the policy allows it, else the
///    allowed installation closest to the manifest's version (the oldest not older than it, else the newest).
///    None allowed: `casaVersionRefused`, naming the versions installed and what the policy asks for. (With the
///    policy `any` every installation is allowed and rule 3 decides.)
/// 3. Without either: the configured default (`defaultName`), else the only installation if exactly one is
///    configured; otherwise `casaNotConfigured`.
public enum CASASelection {
    /// The error to refuse a manifest with when only a pipeline CASA can restore it (``PipelineManifest/restoreTimeActions``),
    /// or nil if the modular restore can.
    public static func modularRefusal(for manifest: PipelineManifest, manifestName: String) -> RestoreError? {
        let actions = manifest.restoreTimeActions
        guard let first = actions.first else { return nil }
        return RestoreError(
            first.code,
            "manifest \(manifestName) asks hifa_restoredata for \(actions.map(\.description).joined(separator: "; ")), which the modular restore cannot reproduce",
            hint:
                "Configure a CASA installation of kind \"pipeline\" (casa.installations, a monolithic CASA with the ALMA pipeline); the restore then runs with it."
        )
    }

    /// Where `casa.installOnDemand` creates venvs: `<directory>/<version>`, named `modular-<version>`.
    public struct OnDemand: Sendable, Hashable {
        public var directory: String
        public var programDir: String?
        public init(directory: String, programDir: String?) {
            self.directory = directory
            self.programDir = programDir
        }

        /// The installation of `version` (its venv may not exist yet).
        public func installation(version: CASAVersion) -> CASAInstallation {
            CASAInstallation(
                name: "modular-\(version)", kind: .modular, home: CASAInstallation.join(directory, version.description),
                version: version.description, programDir: programDir)
        }
    }

    /// Picks the installation; see the type's documentation for the rules.
    ///
    /// - Parameters:
    ///   - requested: what the request asked for, if anything.
    ///   - manifestCasaVersion: `casaversion@name` from the pipeline manifest, when known.
    ///   - manifestRead: whether the manifest has been read (if not, the policy cannot be applied yet).
    ///   - installations: the configured installations.
    ///   - defaultName: the configured default installation's name.
    ///   - policy: `casa.versionPolicy`.
    ///   - onDemand: where `casa.installOnDemand` creates venvs; nil when it is off.
    ///   - step: the step that decides, named in the error.
    /// - Returns: the installation and the choice to record.
    /// - Throws: ``RestoreError`` `casaNotConfigured` (whose hint lists the configured names) or `casaVersionRefused`.
    ///   - modularRefusal: set when the manifest asks for what the modular restore cannot reproduce
    ///     (``modularRefusal(for:manifestName:)``): only installations of kind `pipeline` are candidates then (same
    ///     rules among them; without a request choice a pipeline installation is taken even if the default is
    ///     modular); a request naming a modular one, or no pipeline installation, throws this refusal.
    public static func choose(
        requested: RestoreRequest.CASAChoice?, manifestCasaVersion: String?, manifestRead: Bool = true,
        installations: [CASAInstallation], defaultName: String?, policy: CASAVersionPolicy = .default,
        onDemand: OnDemand? = nil, step: StepName = .casa, modularRefusal: RestoreError? = nil
    ) throws(RestoreError) -> (CASAInstallation, ChosenCASA) {
        if let refusal = modularRefusal {
            let pipelines = installations.filter { $0.kind == .pipeline }
            do {
                return try choose(
                    requested: requested, manifestCasaVersion: manifestCasaVersion, manifestRead: manifestRead,
                    installations: pipelines,
                    defaultName: pipelines.contains { $0.name == defaultName } ? defaultName : pipelines.first?.name,
                    policy: policy, onDemand: nil, step: step)
            } catch {
                var e = refusal
                e.step = step
                if let requested, let named = try? requestedInstallation(requested, installations: installations) {
                    e.message += "; the request asks for the \(named.kind.rawValue) installation \"\(named.name)\""
                } else if pipelines.isEmpty {
                    e.message += "; no pipeline CASA installation is configured"
                } else {
                    e.message += "; " + error.message
                }
                throw e
            }
        }
        let manifest = manifestCasaVersion.flatMap(CASAVersion.init)
        func choice(_ i: CASAInstallation, created: Bool = false) -> (CASAInstallation, ChosenCASA) {
            (
                i,
                ChosenCASA(
                    version: i.version, manifestVersion: manifestCasaVersion, installation: i.name, policy: policy,
                    manifestRead: manifestRead, createOnFirstUse: created ? i.home : nil)
            )
        }
        func allowed(_ i: CASAInstallation) -> Bool {
            guard let manifest else { return true }
            guard let v = CASAVersion(i.version) else { return policy == .any }
            return policy.allows(installed: v, manifest: manifest)
        }

        if let found = try requestedInstallation(requested, installations: installations, step: step) {
            if let manifest, !allowed(found) {
                throw refused(
                    "The request asks for CASA installation \"\(found.name)\" (CASA \(found.version)), but the calibration tables were made with CASA \(manifest) and casa.versionPolicy \(policy.rawValue) requires \(policy.requirement(for: manifest)).",
                    installations: installations, manifest: manifest, policy: policy, step: step)
            }
            return choice(found)
        }
        if let manifest {
            let exact = installations.filter { CASAVersion($0.version) == manifest }
            if let found = exact.first(where: { $0.name == defaultName }) ?? exact.first { return choice(found) }
            if let onDemand { return choice(onDemand.installation(version: manifest), created: true) }
            if let defaultName, let found = installations.first(where: { $0.name == defaultName }), allowed(found) {
                return choice(found)
            }
            if policy != .any {
                let candidates = installations.filter(allowed).compactMap { i in CASAVersion(i.version).map { (i, $0) }
                }
                let notOlder = candidates.filter { $0.1 >= manifest }.min { $0.1 < $1.1 }
                if let found = notOlder ?? candidates.max(by: { $0.1 < $1.1 }) { return choice(found.0) }
            }
            if policy != .any && !installations.isEmpty {
                throw refused(
                    "The calibration tables were made with CASA \(manifest); casa.versionPolicy \(policy.rawValue) requires \(policy.requirement(for: manifest)), and no configured installation is: "
                        + installations.map { "\($0.name) is CASA \($0.version)" }.joined(separator: ", ") + ".",
                    installations: installations, manifest: manifest, policy: policy, step: step)
            }
        }
        if let defaultName {
            if let found = installations.first(where: { $0.name == defaultName }) { return choice(found) }
            throw notConfigured(
                "The configured default CASA \"\(defaultName)\" is not among the configured installations.",
                installations, step: step)
        }
        if installations.count == 1 { return choice(installations[0]) }
        throw notConfigured(
            installations.isEmpty
                ? "No CASA installation is configured."
                : "No CASA installation was requested, none matches the manifest's casaversion \(manifestCasaVersion ?? "(unknown)") and no default is configured.",
            installations, step: step)
    }

    /// The installation the request names, or nil when it names none.
    ///
    /// - Throws: ``RestoreError`` `casaNotConfigured` when it names one that is not configured.
    public static func requestedInstallation(
        _ requested: RestoreRequest.CASAChoice?, installations: [CASAInstallation], step: StepName = .casa
    ) throws(RestoreError) -> CASAInstallation? {
        switch requested {
        case nil:
            return nil
        case .name(let name):
            if let found = installations.first(where: { $0.name == name }) { return found }
            throw notConfigured(
                "The request asks for CASA \"\(name)\", which is not a configured installation.", installations,
                step: step)
        case .home(let home):
            let wanted = normalisedPath(home)
            if let found = installations.first(where: { normalisedPath($0.home) == wanted }) { return found }
            throw notConfigured(
                "The request asks for casaHome \"\(home)\", which is not a configured CASA installation.",
                installations, step: step)
        }
    }

    /// The rules without a policy (as before `casa.versionPolicy`): the request's choice, else the manifest's
    /// version, else the default, else the only one.
    public static func select(
        requested: RestoreRequest.CASAChoice?, manifestCasaVersion: String?, installations: [CASAInstallation],
        defaultName: String?, modularRefusal: RestoreError? = nil
    ) throws(RestoreError) -> CASAInstallation {
        try choose(
            requested: requested, manifestCasaVersion: manifestCasaVersion, installations: installations,
            defaultName: defaultName, policy: .any, modularRefusal: modularRefusal
        ).0
    }

    /// `path` with symlinks resolved (as far as they exist), `.`/`..` removed and no trailing slash.
    static func normalisedPath(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        var result = url.path
        while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
        return result
    }

    private static func notConfigured(
        _ message: String, _ installations: [CASAInstallation], step: StepName
    ) -> RestoreError {
        RestoreError(
            .casaNotConfigured, message,
            hint: configuredList(installations) ?? "Configure a CASA installation in the agent configuration.",
            step: step)
    }

    private static func refused(
        _ message: String, installations: [CASAInstallation], manifest: CASAVersion, policy: CASAVersionPolicy,
        step: StepName
    ) -> RestoreError {
        let hint =
            "Install CASA \(manifest) (`dropbox-agent casa install --version \(manifest)` when PyPI has it for this Python, or a pipeline installation in casa.installations), "
            + "set casa.installOnDemand, or relax casa.versionPolicy (exact, sameMinor, newerAllowed, any)."
            + (configuredList(installations).map { " " + $0 } ?? "")
        return RestoreError(.casaVersionRefused, message, hint: hint, step: step)
    }

    private static func configuredList(_ installations: [CASAInstallation]) -> String? {
        guard !installations.isEmpty else { return nil }
        return "Configured CASA installations: "
            + installations.map { "\($0.name) (\($0.home), CASA \($0.version))" }.joined(separator: "; ") + "."
    }
}
