internal import Glibc

/// A ready-made name filter for ``WatcherConfiguration/include``: optional include/exclude globs plus the
/// temporary names that transfer tools, editors and NFS leave in a directory.
///
/// ```swift
/// let filter = NameFilter(include: ["*.json"], exclude: ["*.status.json"])
/// let configuration = WatcherConfiguration(directory: "/srv/spool", include: filter.accepts)
/// ```
public struct NameFilter: Sendable, Equatable {
    /// `fnmatch(3)` patterns; a name must match one of them. Empty means every name.
    public var include: [String]
    /// `fnmatch(3)` patterns; a name matching any of them is dropped.
    public var exclude: [String]
    /// Whether names for which ``isTemporaryName(_:)`` is true are dropped.
    public var ignoresTemporaryNames: Bool

    /// Creates a filter.
    ///
    /// - Parameters:
    ///   - include: Patterns of which a name must match one (default: none, i.e. every name).
    ///   - exclude: Patterns of names to drop, e.g. the consumer's own status files.
    ///   - ignoresTemporaryNames: Drop temporary names (default `true`); see ``isTemporaryName(_:)``.
    public init(include: [String] = [], exclude: [String] = [], ignoresTemporaryNames: Bool = true) {
        self.include = include
        self.exclude = exclude
        self.ignoresTemporaryNames = ignoresTemporaryNames
    }

    /// Whether the watcher should report `name`.
    public func accepts(_ name: String) -> Bool {
        if ignoresTemporaryNames && Self.isTemporaryName(name) { return false }
        if !include.isEmpty && !include.contains(where: { Self.matches(name, glob: $0) }) { return false }
        return !exclude.contains(where: { Self.matches(name, glob: $0) })
    }

    /// Whether `name` looks like a file that is still being written or that belongs to a tool, not a dropper:
    /// dot-files (rsync's `.name.XXXXXX`, NFS silly-renames `.nfs…`, rsync's `.~tmp~`, vim's `.name.swp`),
    /// `*~`, `*.tmp`, `*.part`, `*.filepart`, `*.crdownload`, `*.swp` (suffixes in any case) and `sed -i`'s
    /// `sedXXXXXX`.
    public static func isTemporaryName(_ name: String) -> Bool {
        if name.hasPrefix(".") || name.hasSuffix("~") { return true }
        let lower = name.lowercased()
        for suffix in [".tmp", ".part", ".filepart", ".crdownload", ".swp"] where lower.hasSuffix(suffix) {
            return true
        }
        if name.utf8.count == 9 && name.hasPrefix("sed")
            && name.utf8.dropFirst(3).allSatisfy({ isASCIIAlphanumeric($0) })
        {
            return true
        }
        return false
    }

    /// Whether `name` matches the shell pattern `glob`. The corresponding C function is `fnmatch` (no flags).
    public static func matches(_ name: String, glob: String) -> Bool {
        fnmatch(glob, name, 0) == 0
    }

    private static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
}
