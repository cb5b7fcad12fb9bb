import Delivery
import FoundationEssentials
import Glibc
import InotifyWatcher
import Logging
import RestoreSteps
import UnixSignals

/// Wires the daemon together: watcher → agent, lease recovery, metrics, and the signal-driven shutdown.
struct AgentRuntime: Sendable {
    let configuration: AgentConfiguration
    let agent: SpoolAgent
    let logger: Logger
    /// Held for the life of the process: a second agent on the same data directory refuses to start.
    let dataLock: DataDirectoryLock
    /// systemd notifications (`Type=notify`); inert when `$NOTIFY_SOCKET` is unset.
    var systemd = SystemdNotifier.fromEnvironment()

    init(
        configuration: AgentConfiguration, logger: Logger, executor: (any RestoreExecutor)? = nil,
        notifier: (any Notifier)? = nil
    ) throws {
        self.configuration = configuration
        self.logger = logger
        // Two malloc arenas instead of up to one per thread (16 on 2 cores): the agent's threads mostly wait, and
        // each arena kept its own free memory after a burst.
        HeapTrim.limitArenas(to: 2)
        HeapTrim.mapAllocations(atLeast: 128 * 1024)
        let c = configuration
        dataLock = try DataDirectoryLock(dataDirectory: c.dataDirectory)
        let store = JobStore(
            workDirectory: c.agent.workDirectory!, spoolDirectory: c.spool.directory!,
            rejectedDirectory: c.spool.rejectedDirectory!,
            leaseSeconds: c.agent.leaseSeconds)
        let journal = try Journal(path: c.agent.journal!)
        let settings = SpoolAgent.Settings(
            spoolDirectory: c.spool.directory!, settleSeconds: c.spool.settleSeconds,
            incompleteTimeoutSeconds: c.spool.incompleteTimeoutSeconds, maxRequestBytes: c.spool.maxRequestBytes,
            allowedOwners: try SafeRequestFile.allowedOwners(c.spool.allowedOwners),
            maxConcurrentRestores: max(1, c.agent.maxConcurrentRestores),
            maxConcurrentPerDropper: max(0, c.agent.maxConcurrentPerDropper),
            leaseSeconds: c.agent.leaseSeconds,
            maxAttempts: c.agent.maxAttempts, resubmitWindowSeconds: c.agent.resubmitWindowSeconds,
            shutdownGraceSeconds: c.agent.shutdownGraceSeconds,
            statusFileMode: mode_t(c.spool.statusFileMode, radix: 8) ?? 0o644,
            restoreDirectory: c.agent.restoreDirectory!,
            notifyOn: Set(c.notifications.notifyOn.compactMap(RequestState.init(rawValue:))),
            defaultDeliveryFormat: c.delivery.defaultFormat,
            transientRetryHorizon: c.archive.retryHorizonSeconds, transientRetryInitial: c.archive.retryInitialSeconds,
            casaInstallations: { ProductionExecutor.casaInstallations(c) })
        agent = try SpoolAgent(
            settings: settings, store: store, journal: journal,
            executor: try executor ?? ProductionExecutor(configuration: c, logger: logger),
            notifier: try notifier ?? MailNotifier(configuration: c, logger: logger), logger: logger)
    }

    /// Runs until SIGTERM or SIGINT, then drains and returns (exit status 0). SIGHUP is trapped and ignored
    /// (the configuration is read once; restart to change it): it never kills the agent and orphans a CASA.
    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        try await run {
            for await signal in signals {
                if signal == .sighup {
                    logger.notice("SIGHUP ignored: the configuration is read at start; restart the agent to change it")
                    continue
                }
                logger.notice("stopping", metadata: ["signal": "\(signal)"])
                return
            }
        }
    }

    /// Runs until `stopRequested` returns, then stops intake, drains the running steps and returns.
    func run(until stopRequested: @escaping @Sendable () async -> Void) async throws {
        let c = configuration
        let watcher = try DirectoryWatcher(
            WatcherConfiguration(
                directory: c.spool.directory!, mode: WatchMode(rawValue: c.spool.watchMode.rawValue) ?? .automatic,
                rescanInterval: .milliseconds(Int(c.spool.rescanIntervalSeconds * 1000)),
                pollInterval: .milliseconds(Int(c.spool.pollIntervalSeconds * 1000)),
                include: { SpoolNames.classify($0) != .ignored }))
        logger.notice(
            "agent started",
            metadata: [
                "version": "\(DropboxAgentCommand.version)", "spool": "\(c.spool.directory!)",
                "watch.mode": "\(watcher.effectiveMode.rawValue)",
                "filesystem": "\(watcher.filesystem.typeName)", "data": "\(c.dataDirectory)",
                "max.concurrent": .stringConvertible(c.agent.maxConcurrentRestores),
            ])
        let agent = self.agent
        let logger = self.logger
        // Registered before recovery and intake: the dashboard sees every document published from now on.
        let feed =
            c.dashboard.enabled && c.dashboard.file != nil ? DashboardFeed.register(spool: c.spool.directory!) : nil
        defer { feed?.unregister() }
        let metricsPath = c.metrics.textfile ?? c.dataDirectory + "/metrics.prom"
        let startTime = Date().timeIntervalSince1970
        let systemd = self.systemd
        // The work loop below runs at least as often as the watchdog needs a ping.
        let watchdogSeconds = systemd.watchdogPingInterval.map {
            Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18
        }
        let recoveryInterval = min(max(0.5, min(10, c.agent.leaseSeconds / 3)), watchdogSeconds ?? .infinity)
        let mailInterval = max(0.2, min(1, c.notifications.retryInitialSeconds / 2))
        let sweeper = Sweeper(
            store: agent.store, restoreDirectory: c.agent.restoreDirectory!, downloadDirectory: c.delivery.directory!,
            dataDirectory: c.dataDirectory, cleanPolicy: c.delivery.cleanWorkingArea, logger: logger,
            // The mail queue's writes are atomic too (bench/chaos N = 100 found a killed agent's there).
            otherDirectories: [c.dataDirectory + "/mailqueue"]
                + (c.dashboard.file.map { file in
                    let www = PathString.deletingLastComponent(file)
                    return [www, www + "/requests"]
                } ?? []),
            interval: c.agent.sweepIntervalSeconds,
            restoreCache: c.delivery.reuseMaxBytes > 0
                ? RestoreCache(root: c.dataDirectory + "/restore-cache", maxBytes: c.delivery.reuseMaxBytes) : nil)
        await sweeper.sweepOffPool()
        // Leases are renewed from now on, on their own thread at fixed deadlines (LeaseRenewer).
        // A hung work loop (below) stops them after two thirds of the lease: its jobs are then taken over.
        agent.renewer.requireLiveness(within: c.agent.leaseSeconds * 2 / 3)
        agent.renewer.start()
        await agent.recoverJobs()
        // The spool is watched (the watcher exists) and recovery is done: ready.
        systemd.notify(["READY=1", await agent.systemdStatus()])
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // One batch at a time (what one read of the inotify queue or one rescan produced): its status
                // writes share one directory fsync (group commit, SpoolAgent.handle(entries:)).
                while let batch = await watcher.nextBatch() {
                    let names = batch.compactMap { event -> String? in
                        if case .candidate(let name, _) = event { return name }
                        return nil
                    }
                    if !names.isEmpty { await agent.handle(entries: names) }
                    for event in batch {
                        switch event {
                        case .candidate:
                            break
                        case .overflow:
                            logger.warning("inotify queue overflowed; rescanning the spool")
                        case .watchLost(let reason):
                            agent.metrics.add(\.watchLost)
                            logger.error("the spool is no longer watched", metadata: ["reason": "\(reason)"])
                        case .watchRestored:
                            logger.notice("the spool is watched again")
                        case .rescanCompleted:
                            break
                        }
                    }
                }
            }
            if c.dashboard.enabled, let file = c.dashboard.file, let feed {
                let refresh = c.dashboard.refreshSeconds
                group.addTask(executorPreference: Bookkeeping.housekeeping) {
                    // From what the agent publishes (DashboardFeed), within a second of a change (at most once a
                    // second), every `refreshSeconds` while requests are live, else once a minute.
                    var writer = DashboardWriter(
                        indexPath: file, feed: feed, refreshSeconds: max(1, Int(refresh.rounded())))
                    do { try writer.seed(records: StatusRecords(configuration: c)) } catch {
                        logger.warning(
                            "cannot write the dashboard", metadata: ["path": "\(file)", "error": "\(error)"])
                    }
                    while !Task.isCancelled {
                        if writer.due(now: Date().timeIntervalSince1970) {
                            do { try writer.write() } catch {
                                logger.warning(
                                    "cannot write the dashboard", metadata: ["path": "\(file)", "error": "\(error)"])
                            }
                            // What a refresh after a burst freed goes back to the kernel.
                            HeapTrim.releaseFreeMemory()
                        }
                        try await Task.sleep(for: .milliseconds(250))
                    }
                }
            }
            if let retention = c.delivery.retentionSeconds {
                let expiry = ProductionExecutor.deliveryExpiry(c, logger: logger)
                let interval = DeliveryExpiry.interval(retentionSeconds: retention)
                group.addTask(executorPreference: Bookkeeping.housekeeping) {
                    // Expired deliveries leave the download area (on a thread of its own: removing a tree blocks).
                    while !Task.isCancelled {
                        let removed = await BlockingWork.run { _ in expiry.sweep() }
                        if !removed.isEmpty { agent.metrics.add(\.deliveriesExpired, removed.count) }
                        try await Task.sleep(for: .seconds(interval))
                    }
                }
            }
            group.addTask(executorPreference: Bookkeeping.housekeeping) {
                // Mail goes out here, outside every job slot: a dead or silent SMTP server delays only mail.
                while !Task.isCancelled {
                    await agent.notifier.sendQueued()
                    try await Task.sleep(for: .seconds(mailInterval))
                }
            }
            group.addTask(executorPreference: Bookkeeping.housekeeping) {
                var lastCollection = 0.0
                var lastSweep = Date().timeIntervalSince1970
                // On a fixed grid of deadlines, like the lease renewals: the work below does not delay the next round
                // (nor the watchdog ping).
                var due = LeaseRenewer.monotonicNow() + recoveryInterval
                while !Task.isCancelled {
                    try await Task.sleep(for: .seconds(max(0, due - LeaseRenewer.monotonicNow())))
                    defer {
                        due = LeaseRenewer.nextDeadline(
                            after: due, now: LeaseRenewer.monotonicNow(), interval: recoveryInterval)
                    }
                    await agent.recoverJobs()
                    // The fast lane looks at every queued request again here (another agent's claims and
                    // conclusions); between rounds only at those that something of ours may have changed.
                    await agent.pump(fullCheck: true)
                    // From the loop that does the work, after three round trips through the agent: a hung agent
                    // stops pinging and systemd restarts it (WatchdogSec=).
                    systemd.notify(
                        (systemd.watchdogTimeout == nil ? [] : ["WATCHDOG=1"]) + [await agent.systemdStatus()])
                    agent.renewer.noteAlive()
                    let stats = watcher.statistics
                    agent.metrics.set(\.watcherEvents, stats.events)
                    agent.metrics.set(\.watcherOverflows, stats.overflows)
                    agent.metrics.set(\.watcherRescans, stats.rescans)
                    agent.metrics.set(\.watcherRescanOnlyFinds, stats.rescanOnlyFinds)
                    let live = AgentMetrics.Live(
                        running: await agent.runningCount, queued: await agent.queuedCount,
                        waiting: await agent.pendingCount,
                        watching: stats.watching || stats.mode == .polling,
                        oldestQueuedAgeSeconds: await agent.oldestQueuedAge,
                        casaProcesses: CASAProcesses.count(under: agent.settings.restoreDirectory),
                        cache: await agent.executor.cacheStatistics(), startTime: startTime)
                    if Date().timeIntervalSince1970 - lastSweep >= sweeper.interval {
                        lastSweep = Date().timeIntervalSince1970
                        await sweeper.sweepOffPool()
                    }
                    if Date().timeIntervalSince1970 - lastCollection > 3600 {
                        lastCollection = Date().timeIntervalSince1970
                        await agent.collectGarbage(retentionDays: c.agent.retentionDays)
                    }
                    try? AtomicFile.write(Data(agent.metrics.prometheusText(live).utf8), to: metricsPath)
                }
            }
            await stopRequested()
            systemd.notify(["STOPPING=1", "STATUS=stopping: waiting for running steps"])
            watcher.stop()
            await agent.shutdown(grace: c.agent.shutdownGraceSeconds)
            agent.renewer.stop()
            group.cancelAll()
        }
        dataLock.release()
        logger.notice("agent stopped cleanly")
    }
}
