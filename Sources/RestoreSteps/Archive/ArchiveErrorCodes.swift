extension RestoreError.Code {
    // MARK: ALMA archive services (TAP, DataLink, dataPortal)

    /// An archive answer (VOTable, listing) cannot be read: not XML, no results table, an unsupported
    /// serialization, or a value of the wrong shape.
    public static let archiveResponseUnreadable: Self = "archiveResponseUnreadable"
    /// The archive reported a failed query (`INFO name="QUERY_STATUS" value="ERROR"`).
    public static let archiveQueryFailed: Self = "archiveQueryFailed"
    /// The archive does not know the MOUS (DataLink answers an error for its ID, or no links at all).
    public static let archiveUnknownMous: Self = "archiveUnknownMous"
    /// The archive refused access (HTTP 401/403, or links marked not readable): proprietary data or a bad token.
    public static let archiveAccessDenied: Self = "archiveAccessDenied"
    /// The archive could not be reached or answered with a server error; trying later may help.
    public static let archiveUnavailable: Self = "archiveUnavailable"
    /// DataLink lists no auxiliary tar (`#auxiliary`, `*_auxiliary.tar`) for the MOUS, or more than one.
    public static let archiveNoAuxiliary: Self = "archiveNoAuxiliary"
    /// A file name taken from an archive link is not a plain, safe file name.
    public static let archiveUnsafeFileName: Self = "archiveUnsafeFileName"
}
