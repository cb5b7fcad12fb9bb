/// Where a request's data come from (the request's optional `source`; absent: `sources.default`).
///
/// - `catalogue`: the site's metadata catalogue and archive store (NGAS or the embedded local store).
/// - `package`: an ALMA download package as the archive delivers it — a directory holding the
///   `*_auxiliary.tar` and `*.asdm.sdm.tar` files, the same tree already untarred, or an http(s) URL of such a
///   directory. Everything the restore needs is read from the package; no catalogue is consulted.
/// - `almaArchive`: the public ALMA archive, found by the MOUS uid alone (TAP `ivoa.obscore` + DataLink); only
///   the auxiliary and raw tars are fetched, then restored as a package.
public enum RestoreSource: Sendable, Codable, Hashable, CustomStringConvertible {
    case catalogue
    /// An absolute directory path or an `http://`/`https://` URL of a package directory.
    case package(String)
    case almaArchive

    /// The configuration spelling of the kind (`sources.default`): `catalogue`, `package`, `almaArchive`.
    public var kind: String {
        switch self {
        case .catalogue: "catalogue"
        case .package: "package"
        case .almaArchive: "almaArchive"
        }
    }

    public var description: String {
        switch self {
        case .catalogue: "the catalogue"
        case .package(let location): "the download package \(location)"
        case .almaArchive: "the ALMA archive"
        }
    }

    /// Whether `location` names a package over HTTP rather than a local directory.
    public static func isURL(_ location: String) -> Bool {
        location.hasPrefix("http://") || location.hasPrefix("https://")
    }
}
