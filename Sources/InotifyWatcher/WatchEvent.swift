/// What a ``DirectoryWatcher`` reports.
///
/// Every event is a hint: a candidate may already be gone, incomplete or not a regular file when the consumer looks
/// at it, and one name can be reported several times. Consumers re-validate and make their processing idempotent.
public enum WatchEvent: Sendable, Hashable {
    /// A name that may now refer to a complete file: an inotify `IN_CLOSE_WRITE` or `IN_MOVED_TO` event, or a
    /// name found by a rescan.
    ///
    /// The name can be any kind of entry (a directory moved in, a symbolic link or FIFO found by a rescan); the
    /// consumer checks with `lstat`/`O_NOFOLLOW`. A candidate that is still waiting in the watcher's buffer is not
    /// queued a second time.
    case candidate(name: String, origin: Origin)
    /// A full listing of the directory finished; `names` is how many names passed the include filter.
    case rescanCompleted(reason: RescanReason, names: Int)
    /// The kernel dropped events (`IN_Q_OVERFLOW`); a rescan with reason ``RescanReason/overflow`` follows.
    case overflow
    /// The watcher is no longer watching the directory: it was deleted, moved, unmounted or replaced, or the
    /// kernel refused the watch (`ENOSPC`, `EMFILE`, …). `reason` says which, precisely.
    ///
    /// While the watch is lost the watcher retries every ``WatcherConfiguration/pollInterval`` and, whenever the
    /// directory exists, lists it at that period (polling fallback).
    case watchLost(reason: String)
    /// The directory is watched again after ``watchLost(reason:)``; a rescan with reason
    /// ``RescanReason/watchRestored`` follows.
    case watchRestored

    /// Where a ``WatchEvent/candidate(name:origin:)`` came from.
    public enum Origin: Sendable, Hashable {
        /// An inotify event (`IN_CLOSE_WRITE` or `IN_MOVED_TO`).
        case event
        /// A full listing of the directory.
        case rescan
    }
}

/// Why a ``DirectoryWatcher`` listed its directory.
public enum RescanReason: String, Sendable, Codable, CaseIterable {
    /// The first listing, right after the watch was set up.
    case start
    /// The kernel reported `IN_Q_OVERFLOW`.
    case overflow
    /// The watch was re-established after it was lost.
    case watchRestored
    /// The periodic safety rescan while inotify works.
    case interval
    /// The periodic listing in polling mode (or while a lost watch cannot be re-established).
    case polling
    /// ``DirectoryWatcher/requestRescan()`` was called.
    case requested
}
