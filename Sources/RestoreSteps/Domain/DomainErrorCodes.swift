extension RestoreError.Code {
    // MARK: Request and catalogue (checked before anything is fetched)

    /// A uid in the request is not an ALMA uid (`uid://A001/X1/X2`).
    public static let invalidUid: Self = "invalidUid"
    /// The catalogue does not know the MOUS.
    public static let unknownMous: Self = "unknownMous"
    /// The MOUS has no `calibration` products.
    public static let noCalibrationProducts: Self = "noCalibrationProducts"
    /// The MOUS has no `science` products: calibrations are not official until images are archived (NRAO rule).
    public static let noScienceProducts: Self = "noScienceProducts"
    /// A `script` product matches `scriptFor%Cal%`: the MOUS was calibrated manually, not by the pipeline.
    public static let manuallyCalibrated: Self = "manuallyCalibrated"
    /// No product named `*pipeline_manifest.xml`: `hifa_restoredata` cannot restore without one.
    public static let noManifest: Self = "noManifest"
    /// No execution block of the MOUS has QA0 status Pass.
    public static let noPassExecBlock: Self = "noPassExecBlock"
    /// The data are still proprietary (release date in the future).
    public static let proprietary: Self = "proprietary"
    /// The event's `fileSetIds` name execution blocks the MOUS does not have.
    public static let fileSetMismatch: Self = "fileSetMismatch"
    /// The event's `projectCodeOrDataType` is not the MOUS's project.
    public static let projectMismatch: Self = "projectMismatch"
    /// A QA0-Pass execution block has no ASDM file in the archive store.
    public static let missingAsdmFile: Self = "missingAsdmFile"
    /// The catalogue's metadata cannot make a valid PPR (e.g. a Pass EB belongs to no session).
    public static let inconsistentMetadata: Self = "inconsistentMetadata"

    // MARK: Manifest (checked after staging, before CASA)

    /// The pipeline manifest is missing, unreadable or not a `piperesults` document.
    public static let manifestUnreadable: Self = "manifestUnreadable"
    /// The manifest is for another OUS.
    public static let manifestWrongOus: Self = "manifestWrongOus"
    /// A session the PPR assigns to an EB has no `<session>` with `caltables` in the manifest.
    public static let manifestMissingSession: Self = "manifestMissingSession"
    /// A QA0-Pass EB has no `<asdm>` in the manifest.
    public static let manifestMissingAsdm: Self = "manifestMissingAsdm"
    /// The manifest lists an `<asdm>` that is not a QA0-Pass EB of the plan.
    public static let manifestExtraAsdm: Self = "manifestExtraAsdm"
    /// An `<asdm>` lacks `finalflags` or `applycmds`.
    public static let manifestIncompleteAsdm: Self = "manifestIncompleteAsdm"
    /// The manifest puts an EB in another session than the PPR.
    public static let manifestSessionMismatch: Self = "manifestSessionMismatch"
    /// A file the manifest names is not among the staged products.
    public static let manifestFileMissing: Self = "manifestFileMissing"

    // MARK: Manifest asks for what the modular restore cannot reproduce (checked as soon as the manifest is
    // known — step 1 for packages, before the raw fetch for the catalogue — unless a pipeline CASA installation
    // is configured, which then runs instead)

    /// An `<asdm>` holds `<hifa_renorm>`: PL2022–2023 renormalisation, run by `hifa_restoredata` at restore time.
    public static let manifestRenormAtRestore: Self = "manifestRenormAtRestore"
    /// The manifest names selfcal resources.
    public static let manifestSelfcal: Self = "manifestSelfcal"
    /// An `<asdm>` holds an element of unknown meaning (a restore-time action of a newer pipeline).
    public static let manifestUnknownRestoreAction: Self = "manifestUnknownRestoreAction"

    // MARK: PPR

    /// The written PPR broke a rule the pipeline's parser depends on (a writer bug; never reaches CASA).
    public static let pprInvariant: Self = "pprInvariant"
    /// The PPR could not be written or read.
    public static let pprUnreadable: Self = "pprUnreadable"
}
