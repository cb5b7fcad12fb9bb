/// Everything a ``DirectoryWatcher`` needs to know: which directory, how to watch it and which names to report.
public struct WatcherConfiguration: Sendable {
    /// The directory to watch (not followed if it is a symbolic link).
    public var directory: String
    /// The requested mode; ``WatchMode/automatic`` lets `statfs(2)` decide.
    public var mode: WatchMode
    /// The period of the safety rescan while inotify works (default 30 s).
    ///
    /// inotify never reports changes made by other NFS clients, FUSE back ends or overlayfs lower layers, and a
    /// reader can lose events; a periodic full listing catches all of these.
    public var rescanInterval: Duration
    /// The period of rescans in polling mode, and of attempts to re-establish a lost watch (default 2 s).
    public var pollInterval: Duration
    /// The name filter applied to everything the watcher reports (default: every name).
    ///
    /// It runs on the watcher's queue for every event and every listed name, so it must be quick and must not
    /// block. ``NameFilter`` builds filters that drop transfer-tool temporary names; pass its
    /// ``NameFilter/accepts(_:)``.
    public var include: @Sendable (String) -> Bool
    /// How many undelivered events the watcher holds in memory before it stops reading the inotify descriptor
    /// (default 4096).
    ///
    /// Beyond this the kernel queue (`fs.inotify.max_queued_events`) absorbs events; when that overflows too, the
    /// watcher reports ``WatchEvent/overflow`` and rescans, so nothing is lost and memory stays bounded.
    public var eventBufferLimit: Int

    /// Creates a configuration.
    ///
    /// - Parameters:
    ///   - directory: The directory to watch.
    ///   - mode: The requested mode (default ``WatchMode/automatic``).
    ///   - rescanInterval: The safety rescan period while inotify works (default 30 s).
    ///   - pollInterval: The rescan period in polling mode and the retry period of a lost watch (default 2 s).
    ///   - eventBufferLimit: Undelivered events held in memory before reading pauses (default 4096, minimum 1).
    ///   - include: The name filter for everything reported (default: every name).
    public init(
        directory: String,
        mode: WatchMode = .automatic,
        rescanInterval: Duration = .seconds(30),
        pollInterval: Duration = .seconds(2),
        eventBufferLimit: Int = 4096,
        include: @escaping @Sendable (String) -> Bool = { _ in true }
    ) {
        self.directory = directory
        self.mode = mode
        self.rescanInterval = rescanInterval
        self.pollInterval = pollInterval
        self.eventBufferLimit = eventBufferLimit
        self.include = include
    }
}
