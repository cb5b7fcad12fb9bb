/// Counters and state of a ``DirectoryWatcher``, for metrics and health checks.
public struct WatcherStatistics: Sendable, Codable, Equatable {
    /// inotify `IN_CLOSE_WRITE`/`IN_MOVED_TO` events whose name passed the include filter.
    public var events: Int
    /// `IN_Q_OVERFLOW` events seen.
    public var overflows: Int
    /// Full listings of the directory, whatever the reason.
    public var rescans: Int
    /// Names found by a safety rescan (interval, overflow or requested) while inotify was watching, that no
    /// inotify event reported and that the previous rescan had not seen.
    ///
    /// Anything but zero means inotify missed changes: an overflow, or a filesystem whose changes the kernel
    /// does not see. Not counted in polling mode, at start or after a watch is restored. A name is counted only
    /// after a grace period of one second without an event for it, so a file that was still open during the
    /// rescan is not mistaken for a miss.
    public var rescanOnlyFinds: Int
    /// How many times the watch was lost (``WatchEvent/watchLost(reason:)``).
    public var watchLosses: Int
    /// The effective mode: ``WatchMode/inotify`` while a watch is active, ``WatchMode/polling`` otherwise.
    public var mode: WatchMode
    /// The filesystem type of the directory as `statfs(2)` reported it (``FilesystemInfo/typeName``).
    public var filesystem: String
    /// Whether an inotify watch is active right now.
    public var watching: Bool
    /// Why the watch is lost, or `nil` while the directory is watched (or polled) normally.
    public var lostReason: String?

    /// Creates statistics; all counters start at zero.
    public init(
        events: Int = 0, overflows: Int = 0, rescans: Int = 0, rescanOnlyFinds: Int = 0, watchLosses: Int = 0,
        mode: WatchMode, filesystem: String, watching: Bool = false, lostReason: String? = nil
    ) {
        self.events = events
        self.overflows = overflows
        self.rescans = rescans
        self.rescanOnlyFinds = rescanOnlyFinds
        self.watchLosses = watchLosses
        self.mode = mode
        self.filesystem = filesystem
        self.watching = watching
        self.lostReason = lostReason
    }
}
