/// Resources a restore's batch job asks for when the configuration does not say (`execution.slurm.cpusPerTask`,
/// `execution.slurm.memory` override these). Pure: from the restore plan (the MOUS's manifest) only.
public enum SlurmResources {
    /// The driver (`restore_mous.py`: preflight, manifest, untarring the caltables), in MiB.
    public static let driverMiB = 512
    /// One CASA process restoring one execution block (python, casatools, importasdm/applycal tables), in MiB.
    public static let perProcessMiB = 1024

    /// `--mem` for a job restoring execution blocks of these ASDM sizes, `parallel` at a time:
    /// `512 MiB + parallel × (1 GiB + largest ASDM ÷ 10)`, in MiB (Slurm's `M` suffix), rounded up.
    ///
    /// The rule: each concurrent CASA process holds its own python and casatools, and importasdm and applycal
    /// buffer a share of the ASDM they work on, which grows with the data (a tenth of the largest ASDM). The demo
    /// MOUS restores within it on Slurm with memory enforced (OverMemoryKill, tests/test_slurm.py); it is a
    /// starting point, not a measurement of large MOUSes: where a site knows better, `execution.slurm.memory`
    /// replaces it.
    public static func memory(asdmBytes: [Int64], parallel: Int) -> String {
        let largest = asdmBytes.max() ?? 0
        let perEB = Int64(perProcessMiB) + (largest / 10 + (1 << 20) - 1) / (1 << 20)
        let total = Int64(driverMiB) + Int64(max(1, min(parallel, max(1, asdmBytes.count)))) * perEB
        return "\(total)M"
    }
}
