import Delivery
import RestoreSteps

/// Every code a status file's `error.code` (and a rejected request's `.reason.txt`) can carry, in one list:
/// the restore steps' (RestoreSteps), the agent's own (intake, claims, cancellation) and Delivery's, which the
/// steps pass on unchanged. The README's error table is tested against it (`ErrorCodeRegistryTests`), and so
/// is every code declared in the sources: a new code goes here and into the table, or a test fails.
enum ErrorCodeRegistry {
    /// The restore steps' codes.
    static let restore: [RestoreError.Code] = [
        // any step (RestoreSteps/Pipeline/RestoreError.swift)
        .internalError, .cancelled, .timedOut,
        // the steps' working area and inputs (RestoreSteps/Steps/StepErrorCodes.swift)
        .workingAreaUnwritable, .workingAreaDamaged, .catalogueUnavailable, .manifestMissing, .asdmLayout,
        .rawdataCommandInvalid,
        .rawdataExportFailed,
        // disk space (RestoreSteps/Steps/DiskSpaceCheck.swift)
        .insufficientDiskSpace,
        // the ALMA metadata, the manifest and the PPR (step 1, step 3) (RestoreSteps/Domain/DomainErrorCodes.swift)
        .invalidUid, .unknownMous, .noCalibrationProducts, .noScienceProducts, .manuallyCalibrated, .noManifest,
        .noPassExecBlock, .proprietary, .fileSetMismatch, .projectMismatch, .missingAsdmFile, .inconsistentMetadata,
        .manifestUnreadable, .manifestWrongOus, .manifestMissingSession, .manifestMissingAsdm, .manifestExtraAsdm,
        .manifestIncompleteAsdm, .manifestSessionMismatch, .manifestFileMissing, .manifestRenormAtRestore,
        .manifestSelfcal, .manifestUnknownRestoreAction, .pprInvariant, .pprUnreadable,
        // download packages and sources (RestoreSteps/Packages/PackageErrorCodes.swift)
        .packageNotAllowed, .packageNotFound, .packageWrongMous, .packageInconsistent, .packageFileTruncated,
        .sourceNotConfigured,
        // the ALMA archive services (RestoreSteps/Archive/ArchiveErrorCodes.swift)
        .archiveResponseUnreadable, .archiveQueryFailed, .archiveUnknownMous, .archiveAccessDenied,
        .archiveUnavailable, .archiveNoAuxiliary, .archiveUnsafeFileName,
        // CASA (steps 4–6) (RestoreSteps/CASA/RestoreError+CASA.swift)
        .casaNotConfigured, .casaVersionRefused, .casaUnavailable, .casaFailed, .casaSevere, .casaErrorExit,
        .casaTimedOut, .msMissing, .msNotCalibrated, .flagVersionsMissing, .casaEnvironmentFailed,
        // step 5 as a batch job (RestoreSteps/Execution/ScheduledRunner.swift)
        .jobSubmitFailed, .jobTimeLimit, .jobOutOfMemory, .jobNodeFailure, .jobPreempted, .jobCancelled, .jobFailed,
        .jobLost,
        // derived products and plots (RestoreSteps/Delivery/ProductDerivation.swift)
        .derivationFailed,
        // the PPR writer (RestoreSteps/XML/PPRWriter.swift)
        .pprWriteFailed,
    ]

    /// The agent's own codes (``RestoreError/Code`` extensions in `AgentErrorCodes.swift`).
    static let agent: [RestoreError.Code] = [
        .invalidJSON, .incompleteRequest, .invalidRequest, .invalidName, .symlink, .notRegularFile, .hardLink,
        .ownerNotAllowed, .tooLarge, .unreadable, .nothingToCancel, .tooManyAttempts, .noSpaceLeft,
    ]

    /// Delivery's codes (transfers, archives, publishing, mail), passed on by the steps as they are.
    static let delivery: [DeliveryError.Code] = [
        .invalidFileId, .fileNotFound, .archiveFailure, .transferFailed, .sizeMismatch, .checksumMismatch,
        .invalidChecksum, .fileSystem, .cancelled, .archiveCorrupt, .unsafeArchiveEntry, .archiveLimitExceeded,
        .publishFailed, .invalidMailAddress, .smtpAuthenticationFailed, .smtpRejected, .smtpTransient, .smtpTLS,
        .accessDenied, .responseTooLarge, .listingUnreadable, .invalidConfiguration,
    ]

    /// Every registered code string.
    static var all: Set<String> {
        Set(restore.map(\.rawValue) + agent.map(\.rawValue) + delivery.map(\.rawValue))
    }
}
