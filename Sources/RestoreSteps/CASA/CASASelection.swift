internal import Foundation

/// Chooses the CASA installation for a restore.
///
/// Rules, in order:
/// 1. A request choice must name a configured installation: by ``CASAInstallation/name`` (native `casa` field), or
///    by ``CASAInstallation/home`` (the event's `casaHome`), compared after resolving symlinks and normalising the
///    path (`/opt/casa/`, `/opt/./casa` and a symlink to `/opt/casa` all match `/opt/casa`). Anything else is
///    rejected with `casaNotConfigured` before any work is done. A request never chooses an executable.
/// 2. Without a request choice: the installation whose ``CASAInstallation/version`` equals the manifest's
///    `casaversion` (compared by numeric components, so `6.5.4.9` matches `6.5.4-9`) — restoring with the version
///    that calibrated the data is the faithful choice.
/// 3. Otherwise the configured default (`defaultName`), else the only installation if exactly one is configured.
/// 4. Otherwise `casaNotConfigured`.
///
/// When the manifest asks for what the modular restore cannot reproduce (``PipelineManifest/restoreTimeActions``,
/// passed as `modularRefusal`), only installations of kind `pipeline` are candidates (the same rules among them;
/// without a request choice, a pipeline installation is taken even if the default is modular); a request naming a
/// modular one, or no pipeline installation configured, throws `modularRefusal` itself. See ``modularRefusal(for:manifestName:)``.
public enum CASASelection {
    /// The error to refuse a manifest with when only a pipeline CASA can restore it, or nil if the modular
    /// restore can.
    public static func modularRefusal(for manifest: PipelineManifest, manifestName: String) -> RestoreError? {
        let actions = manifest.restoreTimeActions
        guard let first = actions.first else { return nil }
        return RestoreError(
            first.code,
            "manifest \(manifestName) asks hifa_restoredata for \(actions.map(\.description).joined(separator: "; ")), which the modular restore cannot reproduce",
            hint: "Configure a CASA installation of kind \"pipeline\" (casa.installations, a monolithic CASA with the ALMA pipeline); the restore then runs with it.")
    }

    /// Checks, as soon as the manifest is known, that some installation can restore it (see the type's rules).
    public static func checkRestorable(
        manifest: PipelineManifest, manifestName: String, requested: RestoreRequest.CASAChoice?, installations: [CASAInstallation], defaultName: String?
    ) throws(RestoreError) {
        guard let refusal = modularRefusal(for: manifest, manifestName: manifestName) else { return }
        _ = try select(requested: requested, manifestCasaVersion: manifest.casaVersion, installations: installations, defaultName: defaultName, modularRefusal: refusal)
    }

    /// Picks the installation; see the type's documentation for the rules.
    ///
    /// - Parameters:
    ///   - requested: what the request asked for, if anything.
    ///   - manifestCasaVersion: `casaversion@name` from the pipeline manifest, when known.
    ///   - installations: the configured installations.
    ///   - defaultName: the configured default installation's name.
    /// - Throws: ``RestoreError`` with code `casaNotConfigured`, whose hint lists the configured names.
    public static func select(
        requested: RestoreRequest.CASAChoice?,
        manifestCasaVersion: String?,
        installations: [CASAInstallation],
        defaultName: String?,
        modularRefusal: RestoreError? = nil
    ) throws(RestoreError) -> CASAInstallation {
        if let refusal = modularRefusal {
            let pipelines = installations.filter { $0.kind == .pipeline }
            let chosen: CASAInstallation
            do {
                chosen = try select(requested: requested, manifestCasaVersion: manifestCasaVersion, installations: pipelines,
                                    defaultName: pipelines.contains { $0.name == defaultName } ? defaultName : pipelines.first?.name)
            } catch {
                var e = refusal
                if let requested, let named = select(requested, in: installations) {
                    e.message += "; the request asks for the \(named.kind.rawValue) installation \"\(named.name)\""
                } else if pipelines.isEmpty {
                    e.message += "; no pipeline CASA installation is configured"
                } else {
                    e.message += "; " + error.message
                }
                throw e
            }
            return chosen
        }
        switch requested {
        case .name(let name):
            if let found = installations.first(where: { $0.name == name }) { return found }
            throw notConfigured("The request asks for CASA \"\(name)\", which is not a configured installation.", installations)
        case .home(let home):
            let wanted = normalisedPath(home)
            if let found = installations.first(where: { normalisedPath($0.home) == wanted }) { return found }
            throw notConfigured("The request asks for casaHome \"\(home)\", which is not a configured CASA installation.", installations)
        case nil:
            if let version = manifestCasaVersion, let wanted = versionComponents(version), !wanted.isEmpty,
               let found = installations.first(where: { versionComponents($0.version) == wanted }) {
                return found
            }
            if let defaultName {
                if let found = installations.first(where: { $0.name == defaultName }) { return found }
                throw notConfigured("The configured default CASA \"\(defaultName)\" is not among the configured installations.", installations)
            }
            if installations.count == 1 { return installations[0] }
            throw notConfigured(
                installations.isEmpty
                    ? "No CASA installation is configured."
                    : "No CASA installation was requested, none matches the manifest's casaversion \(manifestCasaVersion ?? "(unknown)") and no default is configured.",
                installations)
        }
    }

    private static func select(_ requested: RestoreRequest.CASAChoice, in installations: [CASAInstallation]) -> CASAInstallation? {
        switch requested {
        case .name(let name): installations.first { $0.name == name }
        case .home(let home): installations.first { normalisedPath($0.home) == normalisedPath(home) }
        }
    }

    /// `path` with symlinks resolved (as far as they exist), `.`/`..` removed and no trailing slash.
    static func normalisedPath(_ path: String) -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath()
        var result = url.path
        while result.count > 1 && result.hasSuffix("/") { result.removeLast() }
        return result
    }

    /// The numeric/alphanumeric components of a version string (`6.5.4-9` → `["6","5","4","9"]`).
    static func versionComponents(_ version: String) -> [String]? {
        let parts = version.split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map { part -> String in
            // "04" and "4" are the same component.
            if let n = Int(part) { return String(n) }
            return part.lowercased()
        }
        return parts.isEmpty ? nil : parts
    }

    private static func notConfigured(_ message: String, _ installations: [CASAInstallation]) -> RestoreError {
        let names = installations.map { "\($0.name) (\($0.home), CASA \($0.version))" }
        let hint = names.isEmpty
            ? "Configure a CASA installation in the agent configuration."
            : "Configured CASA installations: " + names.joined(separator: "; ") + "."
        return RestoreError(.casaNotConfigured, message, hint: hint, step: .casa)
    }
}
