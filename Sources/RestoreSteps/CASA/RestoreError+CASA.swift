extension RestoreError.Code {
    /// The request named a CASA installation (by name or `casaHome`) that is not configured, or none could be chosen.
    public static let casaNotConfigured: Self = "casaNotConfigured"
    /// No installation allowed by `casa.versionPolicy` can restore tables made by the manifest's `casaversion`.
    public static let casaVersionRefused: Self = "casaVersionRefused"
    /// The chosen CASA installation is incomplete on disk (no `bin/casa`, no `runpipeline.py`, no venv python, …).
    public static let casaUnavailable: Self = "casaUnavailable"
    /// CASA exited with a non-zero status or was killed by a signal.
    public static let casaFailed: Self = "casaFailed"
    /// A SEVERE line (not a known-harmless one) appeared in a CASA log.
    public static let casaSevere: Self = "casaSevere"
    /// The pipeline left an `errorexit-*.txt` marker in `working/` or `products/`.
    public static let casaErrorExit: Self = "casaErrorExit"
    /// CASA ran past its time limit and was stopped.
    public static let casaTimedOut: Self = "casaTimedOut"
    /// An expected `<AsdmDiskName>.ms` is missing (or has no `table.dat`).
    public static let msMissing: Self = "msMissing"
    /// A measurement set has no `CORRECTED_DATA` column: calibration was not applied.
    public static let msNotCalibrated: Self = "msNotCalibrated"
    /// A measurement set has no `<name>.ms.flagversions` directory next to it.
    public static let flagVersionsMissing: Self = "flagVersionsMissing"
    /// The modular CASA environment (venv) could not be installed or checked.
    public static let casaEnvironmentFailed: Self = "casaEnvironmentFailed"
}
