import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - Scheduling

extension SpoolAgent {
    /// Jobs holding a slot (fast-lane jobs do not, until they need CASA).
    var slotsInUse: Int { running.values.filter { !$0.fast }.count }

    /// Starts queued requests while there are free slots, oldest first; fast-lane jobs waiting for a slot come first.
    /// Linked re-submissions and requests an earlier restore can serve start at once, outside the slots: they do not
    /// wait behind an unrelated running restore.
    ///
    /// - Parameter fullCheck: the fast lane looks at every queued request again (the periodic round: another
    ///   agent's claims and conclusions are seen only there); otherwise only at those not looked at since a job
    ///   with the same digest or MOUS started or ended here (one look per request, not one per request per event).
    func pump(fullCheck: Bool = false) {
        while !draining, slotsInUse < settings.maxConcurrentRestores, !slotWaiters.isEmpty {
            let waiter = slotWaiters.removeFirst()
            guard running[waiter.name] != nil else {
                waiter.continuation.resume()
                continue
            }
            running[waiter.name]?.fast = false
            waiter.continuation.resume()
        }
        startFastLane(fullCheck: fullCheck)
        while !draining, slotsInUse < settings.maxConcurrentRestores {
            // First come, first served — skipping droppers that already use their share of the slots.
            guard let index = queue.firstIndex(where: { ownerHasRoom($0.owner) }) else { return }
            let next = queue.remove(at: index)
            do {
                guard let jobId = try store.claim(name: next.name) else {
                    metrics.add(\.claimsLost)
                    continue
                }
                metrics.add(\.claims)
                start(jobId: jobId, name: next.name, request: next.request, attempt: 1, owner: next.owner)
            } catch {
                logger.error("claim failed", metadata: ["request.name": "\(next.name)", "error": "\(error)"])
            }
        }
    }

    /// Claims and starts, outside the slots, queued requests that will not run CASA: identical to a live or recently
    /// succeeded request (they link to it), or for a MOUS whose restore is kept for reuse.
    private func startFastLane(fullCheck: Bool) {
        guard !draining else { return }
        let now = Date().timeIntervalSince1970
        // A request identical to a running one is looked at on every round until it links: that job writes its
        // index entry shortly after it starts, on another thread.
        let runningDigests = Set(running.values.compactMap(\.sha256))
        var fast: [QueuedRequest] = []
        for index in queue.indices where fullCheck || !queue[index].laneChecked {
            queue[index].laneChecked = !runningDigests.contains(queue[index].sha256)
            if fastLaneServes(queue[index], now: now) { fast.append(queue[index]) }
        }
        for next in fast {
            queue.removeAll { $0.name == next.name }
            do {
                guard let jobId = try store.claim(name: next.name) else {
                    metrics.add(\.claimsLost)
                    continue
                }
                metrics.add(\.claims)
                logger.info("started without waiting for a slot", metadata: ["request.name": "\(next.name)"])
                start(jobId: jobId, name: next.name, request: next.request, attempt: 1, owner: next.owner, fast: true)
            } catch {
                logger.error("claim failed", metadata: ["request.name": "\(next.name)", "error": "\(error)"])
            }
        }
    }

    /// Whether `q` will not run CASA: identical to a live or recently succeeded request (it links to it), or for a
    /// MOUS whose restore is kept for reuse. Reads the idempotency index: a file lookup per call.
    private func fastLaneServes(_ q: QueuedRequest, now: Double) -> Bool {
        if let e = store.indexEntry(sha256: q.sha256), e.name != q.name {
            let live = !e.state.isTerminal && FileManager.default.fileExists(atPath: store.jobDirectory(e.jobId))
            let recent =
                e.state == .succeeded && (e.finishedAt.map { now - $0 <= settings.resubmitWindowSeconds } ?? false)
            if live || recent { return true }
        }
        return q.mous.map { executor.mayReuse(mous: $0) } ?? false
    }

    /// Queued requests with `sha256` (or `mous`) are looked at again by the fast lane: a job asking for the same
    /// just started or ended (or left a restore kept for reuse).
    private func recheckFastLane(sha256: String?, mous: String? = nil) {
        guard sha256 != nil || mous != nil else { return }
        for index in queue.indices
        where queue[index].laneChecked
            && ((sha256 != nil && queue[index].sha256 == sha256) || (mous != nil && queue[index].mous == mous))
        {
            queue[index].laneChecked = false
        }
    }

    /// A fast-lane job that needs CASA after all waits here for a slot (returns at once for any other job).
    func acquireSlot(name: String) async {
        guard running[name]?.fast == true else { return }
        if draining || slotsInUse < settings.maxConcurrentRestores {
            running[name]?.fast = false
            return
        }
        logger.info("waiting for a slot: the restore cannot be reused", metadata: ["request.name": "\(name)"])
        await withCheckedContinuation { slotWaiters.append((name, $0)) }
    }

    /// Whether `owner` may start another restore under `maxConcurrentPerDropper` (0: no per-dropper bound).
    private func ownerHasRoom(_ owner: uid_t) -> Bool {
        settings.maxConcurrentPerDropper <= 0
            || running.values.filter { $0.owner == owner }.count < settings.maxConcurrentPerDropper
    }

    /// Runs a claimed job: a fresh claim with the request parsed at intake, or (`request` nil) a job resumed after a
    /// restart or taken over, whose runner reads the claimed copy.
    func start(
        jobId: String, name: String, request: AcceptedRequest?, attempt: Int, owner: uid_t? = nil, fast: Bool = false
    ) {
        let control = JobControl()
        running[name] = RunningJob(
            jobId: jobId, control: control, attempt: attempt, owner: owner, fast: fast, sha256: request?.sha256,
            mous: request?.parsed.request.mous)
        recheckFastLane(sha256: request?.sha256)
        renewer.hold(.init(jobId: jobId, name: name, attempt: attempt, control: control))
        let runner = JobRunner(
            jobId: jobId, name: name, intake: request, attempt: attempt, agent: self, control: control,
            logger: logger.with(["request.name": "\(name)", "job.id": "\(jobId)"]))
        let task = Task { [weak self] in
            await runner.run()
            await self?.jobEnded(name: name)
        }
        control.attach(task)
    }

    private func jobEnded(name: String) {
        if let job = running[name] {
            renewer.release(jobId: job.jobId)
            // One look at the restore cache per ended job (it lists the cache), not one per queued request.
            let reusable = job.mous.map { executor.mayReuse(mous: $0) } ?? false
            recheckFastLane(sha256: job.sha256, mous: reusable ? job.mous : nil)
        }
        running[name] = nil
        for waiter in slotWaiters where waiter.name == name { waiter.continuation.resume() }
        slotWaiters.removeAll { $0.name == name }
        if !draining {
            // A file of the same name dropped while this one ran.
            if access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0 { examine(name: name) }
            pump()
        }
        if running.isEmpty && queue.isEmpty && pending.isEmpty {
            // Idle again: the collections give back the capacity the burst made them grow to (an emptied array or
            // dictionary keeps it: a 10 000-request queue held 5 MB), the journal its page cache, and what malloc
            // kept of the burst's freed memory goes back to the kernel (a few ms, once per burst; without it RssAnon
            // stayed at the burst's peak).
            queue = []
            pending = [:]
            running = [:]
            slotWaiters = []
            journal.releaseMemory()
            HeapTrim.releaseFreeMemory()
        }
        if running.isEmpty {
            let waiters = finishedWaiters
            finishedWaiters = []
            for w in waiters { w.resume() }
        }
    }
}
