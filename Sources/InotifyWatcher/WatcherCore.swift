@preconcurrency internal import Dispatch
internal import Glibc
internal import Synchronization

/// The state machine behind ``DirectoryWatcher``.
///
/// Sendability: every stored `var` is read and written only on `queue` (a serial dispatch queue: the inotify read
/// source, the rescan timer, consumer requests and `stop()` all run there); `published` is a `Mutex`.
final class WatcherCore: @unchecked Sendable {
    /// How long a name found only by a rescan may wait for its inotify event before it counts as missed.
    static let suspectGrace: Duration = .seconds(1)

    let configuration: WatcherConfiguration
    let path: String
    /// ``WatcherConfiguration/eventBufferLimit``, at least 1.
    let bufferLimit: Int
    let queue: DispatchQueue
    /// A copy of the statistics, readable from any thread.
    let published: Mutex<WatcherStatistics>
    /// The filesystem as detected at start (and re-detected after a lost watch comes back in automatic mode).
    let publishedFilesystem: Mutex<FilesystemInfo>
    /// How many times the queue ran the watcher's handlers (read source, timer, grace check); idle means no change.
    let wakeups = Atomic<Int>(0)

    private var statistics: WatcherStatistics
    private var usesInotify: Bool
    private var inotify: InotifyInstance?
    private var watch: Int32?
    private var identity: DirectoryListing.Identity?
    private let wasMountPoint: Bool
    private var waitingForRemount = false
    private var lostReason: String?
    private var buffer = EventBuffer()
    private var waiters: [CheckedContinuation<WatchEvent?, Never>] = []
    private var stopped = false
    private var timer: (any DispatchSourceTimer)?
    private var previousRescanNames: Set<String> = []
    private var eventNamesSinceRescan: Set<String> = []
    private var suspects: [String: ContinuousClock.Instant] = [:]
    private var confirmationScheduled = false

    /// Checks the directory and detects its filesystem; nothing is watched until ``start()``.
    init(_ configuration: WatcherConfiguration) throws(WatcherError) {
        self.configuration = configuration
        let path = configuration.directory
        self.path = path
        bufferLimit = max(1, configuration.eventBufferLimit)
        switch DirectoryListing.identity(of: path) {
        case .success(let identity): self.identity = identity
        case .failure(var error):
            if error.code == .notADirectory {
                error.hint = "the path must be a directory; symbolic links are not followed, configure the real path"
            }
            throw error
        }
        guard let directory = opendir(path) else { throw WatcherError.system("opendir", errno: errno, path: path) }
        closedir(directory)
        let filesystem = try FilesystemInfo.of(path: path)
        usesInotify =
            switch configuration.mode {
            case .inotify: true
            case .polling: false
            case .automatic: filesystem.inotifyReliable
            }
        wasMountPoint = DirectoryListing.isMountPoint(path)
        statistics = WatcherStatistics(mode: .polling, filesystem: filesystem.typeName)
        published = Mutex(statistics)
        publishedFilesystem = Mutex(filesystem)
        queue = DispatchQueue(label: "InotifyWatcher \(path)")
    }

    /// Sets up the watch (if inotify is used) and runs the start rescan; returns when both are done.
    func start() {
        queue.sync {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.setEventHandler { [weak self] in self?.tick() }
            timer.activate()
            self.timer = timer
            if usesInotify {
                do throws(WatcherError) {
                    try establishWatch()
                } catch {
                    loseWatch(error.description, retryNow: false)
                }
            }
            rescan(.start)
        }
    }

    // MARK: Consumer side

    /// The next event, waiting for one if needed; `nil` once stopped. Cancelling the waiting task stops the watcher.
    func next() async -> WatchEvent? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<WatchEvent?, Never>) in
                queue.async { self.deliver(to: continuation) }
            }
        } onCancel: {
            self.stop()
        }
    }

    /// The next event (waiting for one, as ``next()``) followed by the events already buffered behind it, at most
    /// `limit` in all: what one `read(2)` (or one rescan) produced, for a consumer that commits them together.
    /// `nil` once stopped.
    func nextBatch(limit: Int) async -> [WatchEvent]? {
        guard let first = await next() else { return nil }
        guard limit > 1 else { return [first] }
        return await withCheckedContinuation { (continuation: CheckedContinuation<[WatchEvent]?, Never>) in
            queue.async {
                var batch = [first]
                while batch.count < limit, !self.stopped, let event = self.buffer.popFirst() { batch.append(event) }
                self.updateBackPressure()
                continuation.resume(returning: batch)
            }
        }
    }

    func requestRescan() {
        queue.async { [weak self] in
            guard let self, !self.stopped else { return }
            if self.lostReason != nil && !self.directoryExists() { return }
            self.rescan(.requested)
        }
    }

    func stop() {
        queue.async { self.stopOnQueue() }
    }

    private func deliver(to continuation: CheckedContinuation<WatchEvent?, Never>) {
        if stopped {
            continuation.resume(returning: nil)
        } else if let event = buffer.popFirst() {
            continuation.resume(returning: event)
            updateBackPressure()
        } else {
            waiters.append(continuation)
        }
    }

    private func enqueue(_ event: WatchEvent) {
        if waiters.isEmpty {
            buffer.append(event)
        } else {
            waiters.removeFirst().resume(returning: event)
        }
    }

    private func stopOnQueue() {
        guard !stopped else { return }
        stopped = true
        timer?.cancel()
        timer = nil
        inotify?.close()
        inotify = nil
        watch = nil
        buffer.removeAll()
        let waiting = waiters
        waiters = []
        for continuation in waiting { continuation.resume(returning: nil) }
        statistics.watching = false
        publish()
    }

    // MARK: inotify

    private func establishWatch() throws(WatcherError) {
        let instance: InotifyInstance
        if let inotify {
            instance = inotify
        } else {
            instance = try InotifyInstance(path: path, queue: queue) { [weak self] in self?.readable() }
            inotify = instance
        }
        watch = try instance.addWatch(path: path)
        if case .success(let current) = DirectoryListing.identity(of: path) { identity = current }
        statistics.watching = true
        statistics.mode = .inotify
        publish()
    }

    /// Reads what the kernel has queued, as long as the buffer has room.
    private func readable() {
        wakeups.add(1, ordering: .relaxed)
        guard !stopped, let inotify else { return }
        var overflowed = false
        reading: while buffer.count < bufferLimit {
            switch inotify.read() {
            case .wouldBlock:
                break reading
            case .failed(let value):
                inotify.close()
                self.inotify = nil
                loseWatch(
                    WatcherError(
                        code: .readFailed, errno: value, path: path, message: "reading the inotify descriptor failed"
                    ).description)
                break reading
            case .events(let events):
                for event in events where handle(event) { overflowed = true }
            }
        }
        if overflowed { rescan(.overflow) }
        updateBackPressure()
        publish()
    }

    /// Handles one kernel event; returns whether it was `IN_Q_OVERFLOW`.
    private func handle(_ event: InotifyInstance.RawEvent) -> Bool {
        let mask = event.mask
        if mask & UInt32(IN_Q_OVERFLOW) != 0 {
            statistics.overflows += 1
            enqueue(.overflow)
            return true
        }
        guard let watch, event.watch == watch else { return false }  // an event of a watch already dropped
        if mask & UInt32(IN_UNMOUNT) != 0 {
            waitingForRemount = wasMountPoint
            loseWatch("the filesystem holding the directory was unmounted (IN_UNMOUNT)")
        } else if mask & UInt32(IN_DELETE_SELF) != 0 {
            loseWatch("the directory was deleted (IN_DELETE_SELF)")
        } else if mask & UInt32(IN_MOVE_SELF) != 0 {
            loseWatch("the directory was moved or renamed (IN_MOVE_SELF)")
        } else if mask & UInt32(IN_IGNORED) != 0 {
            self.watch = nil
            loseWatch("the kernel removed the watch (IN_IGNORED)")
        } else if mask & (UInt32(IN_CLOSE_WRITE) | UInt32(IN_MOVED_TO)) != 0, let name = event.name,
            configuration.include(name)
        {
            statistics.events += 1
            eventNamesSinceRescan.insert(name)
            suspects[name] = nil
            enqueue(.candidate(name: name, origin: .event))
        } else if mask & UInt32(IN_CREATE) != 0, let name = event.name, configuration.include(name),
            createdEntryNeedsReport(name)
        {
            eventNamesSinceRescan.insert(name)
            suspects[name] = nil
            enqueue(.candidate(name: name, origin: .event))
        }
        return false
    }

    /// Whether a just-created entry is something that will never be closed after writing: not a regular file,
    /// or a regular file with more than one link (`ln`). `lstat` never follows a link.
    private func createdEntryNeedsReport(_ name: String) -> Bool {
        var st = stat()
        let path = FileName.bytes(of: configuration.directory + "/" + name).map { CChar(bitPattern: $0) } + [0]
        guard lstat(path, &st) == 0 else { return false }
        return (st.st_mode & S_IFMT) != S_IFREG || st.st_nlink > 1
    }

    private func updateBackPressure() {
        guard let inotify else { return }
        if buffer.count >= bufferLimit {
            inotify.suspend()
        } else if inotify.isSuspended && buffer.count <= bufferLimit / 2 {
            inotify.resume()
            // The source may be edge-triggered: read what arrived while it was suspended.
            queue.async { [weak self] in self?.readable() }
        }
    }

    // MARK: Losing and restoring the watch

    /// Reports that the directory is no longer watched (once per distinct reason) and starts retrying: at once
    /// if `retryNow` (the directory may already be back), then every poll interval.
    private func loseWatch(_ reason: String, retryNow: Bool = true) {
        if let watch {
            inotify?.removeWatch(watch)
            self.watch = nil
        }
        statistics.watching = false
        statistics.mode = .polling
        if lostReason == nil { statistics.watchLosses += 1 }
        if lostReason != reason {
            lostReason = reason
            statistics.lostReason = reason
            enqueue(.watchLost(reason: reason))
        }
        publish()
        scheduleTick()
        guard retryNow else { return }
        queue.async { [weak self] in
            guard let self, !self.stopped, self.lostReason != nil else { return }
            _ = self.attemptRestore()
        }
    }

    /// Tries to watch the directory again; on success reports ``WatchEvent/watchRestored`` and rescans.
    private func attemptRestore() -> Bool {
        guard !stopped, lostReason != nil, directoryExists() else { return false }
        if waitingForRemount && !DirectoryListing.isMountPoint(path) { return false }
        if configuration.mode == .automatic, let filesystem = try? FilesystemInfo.of(path: path) {
            usesInotify = filesystem.inotifyReliable
            statistics.filesystem = filesystem.typeName
            publishedFilesystem.withLock { $0 = filesystem }
        }
        if usesInotify {
            do throws(WatcherError) {
                try establishWatch()
            } catch {
                if error.code == .directoryNotFound || error.code == .notADirectory { return false }
                // e.g. ENOSPC: stay in the polling fallback with the precise reason; retry at the next tick.
                loseWatch(error.description, retryNow: false)
                return false
            }
        } else {
            inotify?.close()  // automatic mode found a filesystem inotify cannot see: poll it
            inotify = nil
            if case .success(let current) = DirectoryListing.identity(of: path) { identity = current }
        }
        waitingForRemount = false
        lostReason = nil
        statistics.lostReason = nil
        enqueue(.watchRestored)
        rescan(.watchRestored)
        return true
    }

    private func directoryExists() -> Bool {
        if case .success = DirectoryListing.identity(of: path) { return true }
        return false
    }

    // MARK: Rescans

    private func scheduleTick() {
        guard let timer else { return }
        let period = watch != nil ? configuration.rescanInterval : configuration.pollInterval
        timer.schedule(deadline: .now() + period.dispatchInterval)
    }

    /// The timer: interval rescan, polling rescan, or an attempt to restore a lost watch.
    private func tick() {
        wakeups.add(1, ordering: .relaxed)
        guard !stopped else { return }
        if lostReason != nil {
            if attemptRestore() { return }
            if lostReason != nil && directoryExists() && !waitingForRemount {
                rescan(.polling)  // fallback while inotify is refused
            } else {
                scheduleTick()
            }
            return
        }
        let current = DirectoryListing.identity(of: path)
        switch current {
        case .failure(let error):
            loseWatch("the directory disappeared: \(error.description)")
        case .success(let now) where watch != nil && now != identity:
            loseWatch("the directory was replaced or a filesystem was mounted over it (device or inode changed)")
        case .success:
            rescan(watch != nil ? .interval : .polling)
        }
    }

    /// Lists the directory and reports every included name.
    private func rescan(_ reason: RescanReason) {
        guard !stopped else { return }
        let names: [String]
        do throws(WatcherError) {
            names = try DirectoryListing.names(at: path)
        } catch {
            if lostReason == nil { loseWatch(error.description) } else { scheduleTick() }
            return
        }
        let counting = watch != nil && (reason == .overflow || reason == .interval || reason == .requested)
        let now = ContinuousClock.now
        // Not reserved for every name listed: most are not included (a spool holds a status file per request), and
        // the set is kept until the next rescan.
        var current = Set<String>()
        for name in names where configuration.include(name) {
            current.insert(name)
            if counting && !previousRescanNames.contains(name) && !eventNamesSinceRescan.contains(name)
                && suspects[name] == nil
            {
                suspects[name] = now
            }
            enqueue(.candidate(name: name, origin: .rescan))
        }
        previousRescanNames = current
        eventNamesSinceRescan = []
        statistics.rescans += 1
        enqueue(.rescanCompleted(reason: reason, names: current.count))
        scheduleConfirmation()
        scheduleTick()
        updateBackPressure()
        publish()
    }

    // MARK: Rescan-only accounting

    private func scheduleConfirmation() {
        guard !suspects.isEmpty, !confirmationScheduled else { return }
        confirmationScheduled = true
        queue.asyncAfter(deadline: .now() + Self.suspectGrace.dispatchInterval) { [weak self] in
            self?.confirmSuspects()
        }
    }

    /// Counts the names found only by a rescan whose grace period passed without an inotify event for them.
    private func confirmSuspects() {
        wakeups.add(1, ordering: .relaxed)
        confirmationScheduled = false
        guard !stopped else { return }
        if inotify?.isSuspended == true {
            scheduleConfirmation()  // unread events in the kernel queue may still name them
            return
        }
        readable()
        let now = ContinuousClock.now
        for (name, since) in suspects where now - since >= Self.suspectGrace {
            suspects[name] = nil
            statistics.rescanOnlyFinds += 1
        }
        scheduleConfirmation()
        publish()
    }

    private func publish() {
        let snapshot = statistics
        published.withLock { $0 = snapshot }
    }
}
