extension RestoreError.Code {
    // MARK: Download packages and the ALMA archive (checked in step 1, before any raw data is read)

    /// `source.package` is outside `sources.packageRoots` / `sources.packageURLs`, or none are configured.
    public static let packageNotAllowed: Self = "packageNotAllowed"
    /// The package directory (or URL) does not exist or cannot be listed.
    public static let packageNotFound: Self = "packageNotFound"
    /// The package holds no auxiliary tar and no untarred member tree for the requested MOUS.
    public static let packageWrongMous: Self = "packageWrongMous"
    /// The package's files contradict each other or the request (two manifests' worth of EBs, a session that
    /// is not `session_N`, a raw tar for another EB, …).
    public static let packageInconsistent: Self = "packageInconsistent"
    /// A tar of the package is shorter than a tar can be (an interrupted download).
    public static let packageFileTruncated: Self = "packageFileTruncated"
    /// The source names a kind the configuration does not enable (no archive URL, …).
    public static let sourceNotConfigured: Self = "sourceNotConfigured"
}
