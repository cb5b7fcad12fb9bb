/// The `sources` section of the configuration: where requests may take their data from.
public struct SourceSettings: Sendable, Hashable {
    /// What a request without `source` uses.
    public enum Default: String, Sendable, Hashable, Codable, CaseIterable {
        /// The site's catalogue and archive store.
        case catalogue
        /// The MOUS's download package, looked for in `packageRoots`.
        case package
        /// The public ALMA archive.
        case almaArchive
    }

    public var defaultSource: Default
    /// Directories a request's `source.package` may name (the package must resolve beneath one of them).
    public var packageRoots: [String]
    /// URL prefixes a request's `source.package` may name.
    public var packageURLs: [String]
    /// Base URL of the ALMA archive's services (TAP `…/tap`, DataLink `…/datalink/sync`, files `…/dataPortal/`).
    public var almaArchiveURL: String?
    /// A file holding a bearer token for proprietary data (read when a request needs it, so it can be rotated).
    public var almaArchiveTokenFile: String?

    public init(
        defaultSource: Default = .catalogue, packageRoots: [String] = [], packageURLs: [String] = [],
        almaArchiveURL: String? = nil, almaArchiveTokenFile: String? = nil
    ) {
        self.defaultSource = defaultSource
        self.packageRoots = packageRoots
        self.packageURLs = packageURLs
        self.almaArchiveURL = almaArchiveURL
        self.almaArchiveTokenFile = almaArchiveTokenFile
    }
}
