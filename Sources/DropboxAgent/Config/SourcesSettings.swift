import FoundationEssentials
import Glibc
import RestoreSteps

/// `sources`: where requests may take their data from besides the catalogue.
struct SourcesSettings: Codable, Sendable {
    /// What a request without `source` uses: `catalogue` (default), `package` (its package under a package
    /// root), `almaArchive`.
    var `default`: SourceSettings.Default = .catalogue
    /// Directories a request's `source.package` may name (default `[<data>/packages]`).
    var packageRoots: [String]?
    /// URL prefixes a request's `source.package` may name (default none).
    var packageURLs: [String] = []
    var almaArchive: AlmaArchiveSettings = AlmaArchiveSettings()

    enum CodingKeys: String, CodingKey, CaseIterable { case `default`, packageRoots, packageURLs, almaArchive }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        `default` = try c.value(.default, default: .catalogue)
        packageRoots = try c.decodeIfPresent([String].self, forKey: .packageRoots)
        packageURLs = try c.value(.packageURLs, default: [])
        for (i, prefix) in packageURLs.enumerated()
        where !RestoreSource.isURL(prefix) || URL(string: prefix)?.host == nil {
            throw ConfigurationError(
                path: "$.sources.packageURLs[\(i)]", message: "\"\(prefix)\" is not an http(s) URL prefix")
        }
        almaArchive = try c.value(.almaArchive, default: AlmaArchiveSettings())
    }

    /// The restore steps' view, paths already resolved.
    var restoreSettings: SourceSettings {
        SourceSettings(
            defaultSource: `default`, packageRoots: packageRoots ?? [], packageURLs: packageURLs,
            almaArchiveURL: almaArchive.url, almaArchiveTokenFile: almaArchive.tokenFile)
    }
}

/// `sources.almaArchive`: the public ALMA archive (or a mirror).
struct AlmaArchiveSettings: Codable, Sendable {
    /// Base URL of its services: TAP at `<url>/tap`, DataLink at `<url>/datalink/sync`, files under `<url>/dataPortal/`
    /// (e.g. `https://almascience.eso.org`). Default: none (requests with `{"archive": "alma"}` are refused).
    var url: String?
    /// A file holding a bearer token for proprietary data; read when a request needs it.
    var tokenFile: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case url, tokenFile }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        url = try c.decodeIfPresent(String.self, forKey: .url)
        if let url, !RestoreSource.isURL(url) || URL(string: url)?.host == nil {
            throw ConfigurationError(path: "$.sources.almaArchive.url", message: "\"\(url)\" is not an http(s) URL")
        }
        tokenFile = try c.decodeIfPresent(String.self, forKey: .tokenFile)
    }
}
