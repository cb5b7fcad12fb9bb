/// Bounds that make extraction of a hostile archive (tar bomb) fail cleanly instead of filling the disk.
public struct ArchiveLimits: Sendable, Hashable {
    /// Entries (files, directories, links) at most.
    public var maxEntries: Int
    /// Sum of all entry sizes at most.
    public var maxTotalBytes: Int64
    /// Size of any single entry at most.
    public var maxEntryBytes: Int64

    /// Creates limits; defaults: 100 000 entries, 64 GiB in total, 64 GiB per entry.
    public init(maxEntries: Int = 100_000, maxTotalBytes: Int64 = 64 << 30, maxEntryBytes: Int64 = 64 << 30) {
        self.maxEntries = maxEntries
        self.maxTotalBytes = maxTotalBytes
        self.maxEntryBytes = maxEntryBytes
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
