/// Bounds that make extraction of a hostile archive (tar bomb) fail cleanly instead of filling the disk.
///
/// Every bound is checked against the sizes the tar headers declare before anything is written, and again
/// against the bytes actually decompressed while reading, so a lying header cannot get past either.
///
/// Encoded (``Codable``) with the property names as keys, the form the CASA side's `casa_steps.safe_extract`
/// reads (`restore_mous.py --archive-limits FILE`), so both extractors enforce the same numbers.
public struct ArchiveLimits: Sendable, Hashable, Codable {
    /// Entries (files, directories, links) at most.
    public var maxEntries: Int
    /// Sum of all entry sizes at most.
    public var maxTotalBytes: Int64
    /// Size of any single entry at most.
    public var maxEntryBytes: Int64
    /// Decompressed bytes at most this many times the size of the archive file (0: no ratio check). Measured
    /// on the whole decompressed stream (tar headers and padding included) and on the declared sizes.
    public var maxExpansionRatio: Double
    /// Decompressed bytes always allowed whatever the ratio, so small archives of small files (mostly tar
    /// headers, which compress extremely well) are not refused.
    public var ratioAllowanceBytes: Int64

    /// Creates limits; defaults: 100 000 entries, 64 GiB in total, 64 GiB per entry, expansion at most 200 times
    /// the archive size beyond the first 64 MiB (gzip of zeros reaches about 1 030:1, bzip2 far more; the
    /// fixture's ASDM tarballs expand 2.7:1 and its caltables 7.9:1, but its flag versions 474:1, which is why
    /// flag versions of an EB of known ASDM size are bounded by that size instead: ``expecting(_:)``).
    public init(
        maxEntries: Int = 100_000, maxTotalBytes: Int64 = 64 << 30, maxEntryBytes: Int64 = 64 << 30,
        maxExpansionRatio: Double = 200, ratioAllowanceBytes: Int64 = 64 << 20
    ) {
        self.maxEntries = maxEntries
        self.maxTotalBytes = maxTotalBytes
        self.maxEntryBytes = maxEntryBytes
        self.maxExpansionRatio = maxExpansionRatio
        self.ratioAllowanceBytes = ratioAllowanceBytes
    }

    /// The most decompressed bytes allowed for an archive file of `compressedBytes` (total and ratio bounds).
    public func maxExpandedBytes(compressedBytes: Int64) -> Int64 {
        guard maxExpansionRatio > 0 else { return maxTotalBytes }
        let byRatio = Double(max(0, compressedBytes)) * maxExpansionRatio
        let ratioBound = byRatio >= Double(Int64.max / 2) ? Int64.max / 2 : Int64(byRatio)
        return max(ratioBound, ratioAllowanceBytes)
    }

    /// These limits tightened for a compressed archive (a caltables, flag-versions or auxiliary-products
    /// tarball) whose catalogue or package records `declaredBytes`, its compressed size: catalogues and
    /// manifests do not record the expanded size of these, so total and per-entry bounds become the expansion
    /// bound of that declared size (``maxExpandedBytes(compressedBytes:)``), never looser than configured. The
    /// file on disk then cannot buy more room by being larger than catalogued, and the CASA side gets the
    /// same byte bounds for each archive as the agent.
    public func expectingCompressed(_ declaredBytes: Int64?) -> ArchiveLimits {
        guard let declaredBytes, declaredBytes > 0 else { return self }
        var tightened = self
        let bound = maxExpandedBytes(compressedBytes: declaredBytes)
        tightened.maxTotalBytes = min(maxTotalBytes, bound)
        tightened.maxEntryBytes = min(maxEntryBytes, bound)
        return tightened
    }

    /// These limits tightened for an archive whose expanded size is expected to be about `expectedBytes`
    /// (from the catalogue or a manifest): total and per-entry bounds become twice that plus 64 MiB, never
    /// looser than configured.
    public func expecting(_ expectedBytes: Int64?) -> ArchiveLimits {
        guard let expectedBytes, expectedBytes > 0 else { return self }
        var tightened = self
        let bound = expectedBytes > Int64.max / 4 ? Int64.max / 2 : expectedBytes * 2 + (64 << 20)
        tightened.maxTotalBytes = min(maxTotalBytes, bound)
        tightened.maxEntryBytes = min(maxEntryBytes, bound)
        return tightened
    }
}

/// What ``SafeArchive/extract(_:into:limits:)`` wrote.
public struct ExtractionSummary: Sendable, Hashable {
    /// Entries extracted.
    public var entries: Int
    /// Regular files (including hard links).
    public var files: Int
    /// Directories.
    public var directories: Int
    /// Symbolic links (all pointing inside the target).
    public var symlinks: Int
    /// Bytes of file data written.
    public var bytes: Int64
    /// The top-level names created in the target directory, sorted.
    public var topLevelNames: [String]
}
