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
public enum CASASelection {
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
        defaultName: String?
    ) throws(RestoreError) -> CASAInstallation {
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
