extension RestoreError.Code {
    // MARK: The steps' own working area and inputs

    /// The working area (or a file or link in it) cannot be created, written or moved: space or permissions.
    public static let workingAreaUnwritable: Self = "workingAreaUnwritable"
    /// A resumed restore finds its working area incomplete (step 1's `metadata.json` missing or unreadable).
    public static let workingAreaDamaged: Self = "workingAreaDamaged"
    /// The metadata catalogue (`catalogue.sqlite`) cannot be read.
    public static let catalogueUnavailable: Self = "catalogueUnavailable"
    /// No pipeline manifest among the calibration products, or the one chosen cannot be read (step 3).
    public static let manifestMissing: Self = "manifestMissing"
    /// An ASDM archive holds no directory named after the execution block (`<name>` or `<name>.asdm.sdm`).
    public static let asdmLayout: Self = "asdmLayout"
    /// `archive.rawdataCommand` is configured but empty.
    public static let rawdataCommandInvalid: Self = "rawdataCommandInvalid"
    /// `archive.rawdataCommand` ran but did not create the ASDM it was asked for.
    public static let rawdataExportFailed: Self = "rawdataExportFailed"
}
