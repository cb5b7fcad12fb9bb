internal import Delivery
internal import FoundationEssentials
#if canImport(Glibc)
internal import Glibc
#endif

/// The free-space check before the raw fetch: a restore needs about `factor` × the raw ASDM bytes in its
/// working area (the raw tars while fetched, the unpacked ASDMs, the imported MSes with `CORRECTED_DATA`, the
/// caltables). The scriptForPI documentation says about 11× (alma-restore.md §10); ``defaultFactor`` is what we
/// measured on the fixture (peak size of the working area during a real restore ÷ raw ASDM tar bytes, plus the
/// raw tars themselves while they are fetched), rounded up. Sites configure `agent.diskSpaceFactor`.
public enum DiskSpaceCheck {
    /// The default factor, measured on the fixture (README, "Disk space").
    public static let defaultFactor: Double = 24

    /// Throws `insufficientDiskSpace` when the filesystem holding `path` has less than `factor × rawBytes` free
    /// (for an unprivileged process). `factor` ≤ 0 disables the check; a filesystem that cannot be queried
    /// passes (the fetch itself then fails on a full disk).
    public static func check(rawBytes: Int64, factor: Double, path: String) throws(RestoreError) {
        guard factor > 0, rawBytes > 0, let available = availableBytes(path) else { return }
        let needed = Int64((Double(rawBytes) * factor).rounded(.up))
        guard available < needed else { return }
        throw RestoreError(
            .insufficientDiskSpace,
            "the restore needs about \(needed) bytes (\(format(needed))) = \(factor) × \(rawBytes) bytes of raw data, but the filesystem of \(path) has \(available) bytes (\(format(available))) available",
            hint:
                "Free space under \(path), or move agent.restoreDirectory to a larger filesystem; agent.diskSpaceFactor sets the factor (0 disables the check)."
        )
    }

    /// Bytes available to an unprivileged process on the filesystem of `path` (statvfs `f_bavail × f_frsize`).
    static func availableBytes(_ path: String) -> Int64? {
        var s = statvfs()
        guard statvfs(path, &s) == 0 else { return nil }
        return Int64(s.f_bavail) * Int64(s.f_frsize)
    }

    static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : TextEssentials.fixed(value, fractionDigits: 1) + " " + units[unit]
    }
}

extension RestoreError.Code {
    /// Not enough free space in the working area for the restore (checked before the raw fetch).
    public static let insufficientDiskSpace: Self = "insufficientDiskSpace"
}
