import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// The agent: takes requests from the spool, claims them and runs them with bounded parallelism.
///
/// All decisions about spool entries happen on this actor, one at a time; the restores themselves run in
/// their own tasks (``JobRunner``) and report back when they end.
///
/// The actor's sections make short blocking calls — `flock` on a spool entry (a same-host ordering aid, see
/// ``whileInSpool(_:_:)``), the SQLite journal
/// (`synchronous=FULL`), fsynced status and lease files, claims by `rename` — so it runs on a thread of its own
/// (``DedicatedThreadExecutor``), never on the cooperative pool; anything long (garbage collection of finished
/// jobs) goes to ``BlockingWork``.
actor SpoolAgent {
    /// One thread for every agent of the process: each isolated section is a bounded moment.
    private static let isolationThread = DedicatedThreadExecutor(name: "spool-agent")
    nonisolated var unownedExecutor: UnownedSerialExecutor { Self.isolationThread.asUnownedSerialExecutor() }

    /// The settings the agent works with, resolved from the configuration.
    struct Settings: Sendable {
        var spoolDirectory: String
        var settleSeconds: Double
        var incompleteTimeoutSeconds: Double
        var maxRequestBytes: Int
        var allowedOwners: Set<uid_t>?
        var maxConcurrentRestores: Int
        /// At most this many restores of one dropper (file owner) at once; 0 means no per-dropper bound.
        var maxConcurrentPerDropper: Int = 0
        var leaseSeconds: Double
        var maxAttempts: Int
        var resubmitWindowSeconds: Double
        var shutdownGraceSeconds: Double
        var statusFileMode: mode_t
        var restoreDirectory: String
        var notifyOn: Set<RequestState>
        var defaultDeliveryFormat: RestoreRequest.DeliveryFormat
        /// `archive.retryHorizonSeconds` / `retryInitialSeconds`: transient failures are retried later, with
        /// backoff, this long after the first.
        var transientRetryHorizon: Double = 14400
        var transientRetryInitial: Double = 30
        /// The CASA installations a request may name (`casa`, event `casaHome`), listed when a request names one;
        /// nil: not checked at intake (planning still refuses an unknown one).
        var casaInstallations: (@Sendable () -> [CASAInstallation])? = nil
    }

    /// A file seen in the spool that is not yet complete (or not yet stable).
    struct PendingFile {
        var firstSeen: Double
        var identity: FileIdentity?
        var stableSince: Double
        var recheckScheduled = false
    }

    /// A complete, valid request waiting for a free slot (still in the spool, unclaimed).
    struct QueuedRequest {
        var name: String
        var firstSeen: Double
        /// The request as parsed at intake; the claim hands it to the job.
        var request: AcceptedRequest
        /// The uid that dropped it (the file's owner): per-dropper concurrency is bounded on it.
        var owner: uid_t

        var sha256: String { request.sha256 }
        /// The MOUS it asks for (a restore kept for reuse may serve it without a slot).
        var mous: String? { request.parsed.request.mous }
        /// Whether the fast lane has looked at it since anything that could change its answer (``pump(fullCheck:)``).
        var laneChecked = false
    }

    struct RunningJob {
        var jobId: String
        var control: JobControl
        /// The attempt this agent holds: the fencing token its lease renewals compare against.
        var attempt: Int
        /// The dropper's uid (nil for a job resumed from another run: its file has already left the spool).
        var owner: uid_t?
        /// Started outside the slots (a linked re-submission or a likely reuse of an earlier restore): it takes a slot
        /// (``acquireSlot(name:)``) only if it turns out to need CASA.
        var fast: Bool = false
        /// What the request asked for (nil for a job resumed from another run): a queued request with the same
        /// digest or MOUS may start in the fast lane once this one has started or ended.
        var sha256: String? = nil
        var mous: String? = nil
    }

    /// How long a request with a second hard link may wait for it to go away (link-then-unlink publishers).
    static let hardLinkGraceSeconds = 2.0

    let settings: Settings
    let store: JobStore
    /// The requests' status documents (the state) and status files (the output written from it).
    let records: StatusRecords
    let journal: Journal
    let executor: any RestoreExecutor
    let notifier: any Notifier
    let logger: Logger
    let metrics = AgentMetrics()
    /// Renews the running jobs' leases on a thread of its own (started and stopped by the runtime).
    let renewer: LeaseRenewer

    let spoolFD: Int32
    var pending: [String: PendingFile] = [:]
    var queue: [QueuedRequest] = []
    var running: [String: RunningJob] = [:]
    var draining = false
    var finishedWaiters: [CheckedContinuation<Void, Never>] = []
    /// Fast-lane jobs waiting for a slot, oldest first.
    var slotWaiters: [(name: String, continuation: CheckedContinuation<Void, Never>)] = []
    /// While a watcher batch is handled (``handle(entries:)``): the directory `fsync` its status writes share.
    var intakeGroup: DirectorySyncGroup?
    /// Requests queued during the batch (name, digest): logged, and claims started, once its statuses are committed.
    var queuedInBatch: [(name: String, sha256: String)] = []

    init(
        settings: Settings, store: JobStore, journal: Journal, executor: any RestoreExecutor, notifier: any Notifier,
        logger: Logger
    ) throws {
        self.settings = settings
        self.store = store
        self.records = store.statusRecords(mode: settings.statusFileMode)
        self.journal = journal
        self.executor = executor
        self.notifier = notifier
        self.logger = logger
        self.renewer = LeaseRenewer(
            store: store, interval: Self.renewalInterval(leaseSeconds: settings.leaseSeconds), logger: logger)
        try store.prepare()
        let fd = open(settings.spoolDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemCallError(call: "open", path: settings.spoolDirectory, errno: errno) }
        spoolFD = fd
    }

    deinit { close(spoolFD) }

    /// Seconds between lease renewals: a third of the lease, between 0.5 s and 10 s.
    static func renewalInterval(leaseSeconds: Double) -> Double { max(0.5, min(10, leaseSeconds / 3)) }

    var runningCount: Int { running.count }
    var queuedCount: Int { queue.count }
    var pendingCount: Int { pending.count }

    // MARK: - Shutdown

    /// Stops taking requests; running steps get `grace` seconds to finish, then are interrupted and
    /// checkpointed; leases are released so a restart resumes at once.
    func shutdown(grace: Double) async {
        draining = true
        queue.removeAll()
        // Fast-lane jobs waiting for a slot go on, to be stopped and checkpointed like the others.
        for waiter in slotWaiters { waiter.continuation.resume() }
        slotWaiters.removeAll()
        for job in running.values { job.control.stop(.shutdown, interruptNow: false) }
        guard !running.isEmpty else { return }
        logger.notice(
            "stopping: waiting for running steps",
            metadata: ["running": .stringConvertible(running.count), "grace.seconds": .stringConvertible(grace)])
        let controls = running.values.map(\.control)
        let timer = Task {
            try? await Task.sleep(for: .seconds(grace))
            for c in controls { c.interrupt() }
        }
        await withCheckedContinuation { finishedWaiters.append($0) }
        timer.cancel()
    }

    var isDraining: Bool { draining }

    /// Removes succeeded and cancelled jobs older than the retention (failed and rejected ones are kept).
    nonisolated func collectGarbage(retentionDays: Double) async {
        let store = self.store
        let removed = await BlockingWork.run { _ in store.collectGarbage(retention: retentionDays * 86400) }
        if !removed.isEmpty {
            logger.info("finished requests past their retention removed", metadata: ["jobs": "\(removed)"])
        }
    }

    /// Seconds the oldest queued request has waited for a slot (0 when none).
    var oldestQueuedAge: Double {
        guard let first = queue.first else { return 0 }
        return max(0, Date().timeIntervalSince1970 - first.firstSeen)
    }
}

extension Logger {
    /// A copy with extra metadata on every line.
    func with(_ extra: Logger.Metadata) -> Logger {
        var copy = self
        for (k, v) in extra { copy[metadataKey: k] = v }
        return copy
    }
}
