internal import Synchronization

/// Watches one directory for names that may be complete files, with inotify where the kernel sees every change and
/// by polling where it does not, and rescans so that nothing is missed.
///
/// Iterate it to receive ``WatchEvent``s:
///
/// ```swift
/// let watcher = try DirectoryWatcher(WatcherConfiguration(directory: "/srv/spool",
///                                                         include: NameFilter(include: ["*.json"]).accepts))
/// for await event in watcher {
///     if case .candidate(let name, _) = event { try? await intake.consider(name) }  // re-validate!
/// }
/// ```
///
/// What it does:
/// - one inotify descriptor watching the directory for `IN_CLOSE_WRITE | IN_MOVED_TO` (plus `IN_DELETE_SELF`,
///   `IN_MOVE_SELF`, `IN_UNMOUNT`; `IN_Q_OVERFLOW` and `IN_IGNORED` are always handled), read in 64 KiB chunks;
/// - a full listing at start, after an overflow, after a lost watch is re-established, every
///   ``WatcherConfiguration/rescanInterval`` and on ``requestRescan()``; every ``WatcherConfiguration/pollInterval``
///   in polling mode;
/// - ``WatchEvent/watchLost(reason:)`` when the directory is deleted, moved, replaced or unmounted or inotify is
///   refused (`ENOSPC`, `EMFILE`), a polling fallback while it is lost, and ``WatchEvent/watchRestored`` when the
///   directory is back;
/// - bounded memory: at most ``WatcherConfiguration/eventBufferLimit`` undelivered events plus one listing; beyond
///   that the kernel queue absorbs events, and its overflow leads to a rescan.
///
/// Nothing runs while the directory is quiet: the descriptor and the rescan timer are dispatch sources on a private
/// serial queue. The sequence is meant for one consumer; it ends (and the descriptor is closed, once) when
/// ``stop()`` is called, when the consuming task is cancelled, or when the last reference to the watcher goes away.
public final class DirectoryWatcher: AsyncSequence, Sendable {
    /// The events of the sequence.
    public typealias Element = WatchEvent
    /// The sequence never throws; problems are reported as events.
    public typealias Failure = Never

    /// The configuration the watcher was created with.
    public let configuration: WatcherConfiguration
    let core: WatcherCore

    /// Starts watching: checks the directory, detects its filesystem, sets up the inotify watch (unless polling)
    /// and lists the directory once; those names are the first events of the sequence.
    ///
    /// inotify refusing to cooperate (`EMFILE`, `ENOSPC`) is not an error: the watcher starts in polling fallback
    /// and its first event is ``WatchEvent/watchLost(reason:)`` saying why.
    ///
    /// - Parameter configuration: What to watch and how.
    /// - Throws: ``WatcherError`` when the directory does not exist, is not a directory (symbolic links are not
    ///   followed), cannot be read, or `statfs` fails.
    public init(_ configuration: WatcherConfiguration) throws(WatcherError) {
        self.configuration = configuration
        core = try WatcherCore(configuration)
        core.start()
    }

    deinit {
        core.stop()
    }

    /// Returns the iterator; all iterators share the watcher's single stream of events.
    public func makeAsyncIterator() -> Iterator {
        Iterator(watcher: self)
    }

    /// The next event, waiting for one, followed by the events already waiting behind it (at most `limit` in all,
    /// without waiting for more): the names one `read(2)` of the kernel queue or one rescan produced, for a consumer
    /// that handles them as a group (e.g. one directory `fsync` for all their status files). `nil` after
    /// ``stop()``. Use either this or the iterator, not both at once.
    public func nextBatch(limit: Int = 256) async -> [WatchEvent]? {
        await core.nextBatch(limit: limit)
    }

    /// Asks for a full rescan soon, e.g. after the consumer changed its mind about a file it left waiting.
    public func requestRescan() {
        core.requestRescan()
    }

    /// Current counters and state; safe to read from any thread.
    public var statistics: WatcherStatistics {
        core.published.withLock { $0 }
    }

    /// ``WatchMode/inotify`` while an inotify watch is active, ``WatchMode/polling`` otherwise (polling mode,
    /// automatic detection chose polling, or the watch is lost).
    public var effectiveMode: WatchMode {
        statistics.mode
    }

    /// The filesystem holding the directory, as `statfs` reported it at start (or when a lost watch came back).
    public var filesystem: FilesystemInfo {
        core.publishedFilesystem.withLock { $0 }
    }

    /// Stops watching: pending and future `next()` calls return `nil`, undelivered events are dropped and the
    /// inotify descriptor is closed. Idempotent; returns at once (the descriptor closes shortly after).
    public func stop() {
        core.stop()
    }

    /// Iterates a ``DirectoryWatcher``.
    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let watcher: DirectoryWatcher

        /// The next event, waiting for one; `nil` after ``DirectoryWatcher/stop()``. Cancelling the waiting task
        /// stops the watcher.
        public mutating func next() async -> WatchEvent? {
            await watcher.core.next()
        }
    }
}
