import Delivery
import Foundation
import Logging
import RestoreSteps

// MARK: - Scheduling

extension SpoolAgent {
    /// Jobs holding a slot (fast-lane jobs do not, until they need CASA).
    var slotsInUse: Int { running.values.filter { !$0.fast }.count }

    /// Starts queued requests while there are free slots, oldest first; fast-lane jobs waiting for a slot come first.
    /// Linked re-submissions and requests an earlier restore can serve start at once, outside the slots: they do not
    /// wait behind an unrelated running restore.
    func pump() {
        while !draining, slotsInUse < settings.maxConcurrentRestores, !slotWaiters.isEmpty {
            let waiter = slotWaiters.removeFirst()
            guard running[waiter.name] != nil else {
                waiter.continuation.resume()
                continue
            }
            running[waiter.name]?.fast = false
            waiter.continuation.resume()
        }
        startFastLane()
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
    private func startFastLane() {
        guard !draining else { return }
        let now = Date().timeIntervalSince1970
        let fast = queue.filter { q in
            if let e = store.indexEntry(sha256: q.sha256), e.name != q.name {
                let live = !e.state.isTerminal && FileManager.default.fileExists(atPath: store.jobDirectory(e.jobId))
                let recent =
                    e.state == .succeeded && (e.finishedAt.map { now - $0 <= settings.resubmitWindowSeconds } ?? false)
                if live || recent { return true }
            }
            return q.mous.map { executor.mayReuse(mous: $0) } ?? false
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
        running[name] = RunningJob(jobId: jobId, control: control, attempt: attempt, owner: owner, fast: fast)
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
        if let job = running[name] { renewer.release(jobId: job.jobId) }
        running[name] = nil
        for waiter in slotWaiters where waiter.name == name { waiter.continuation.resume() }
        slotWaiters.removeAll { $0.name == name }
        if !draining {
            // A file of the same name dropped while this one ran.
            if access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0 { examine(name: name) }
            pump()
        }
        if running.isEmpty {
            let waiters = finishedWaiters
            finishedWaiters = []
            for w in waiters { w.resume() }
        }
    }
}
