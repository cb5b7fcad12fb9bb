import Delivery
import Foundation
import Logging
import RestoreSteps

// MARK: - Scheduling

extension SpoolAgent {
    /// Starts queued requests while there are free slots, oldest first.
    func pump() {
        while !draining, running.count < settings.maxConcurrentRestores {
            // First come, first served — skipping droppers that already use their share of the slots.
            guard let index = queue.firstIndex(where: { ownerHasRoom($0.owner) }) else { return }
            let next = queue.remove(at: index)
            do {
                guard let jobId = try store.claim(name: next.name) else {
                    metrics.add(\.claimsLost)
                    continue
                }
                metrics.add(\.claims)
                start(jobId: jobId, name: next.name, resume: false, attempt: 1, owner: next.owner)
            } catch {
                logger.error("claim failed", metadata: ["request.name": "\(next.name)", "error": "\(error)"])
            }
        }
    }

    /// Whether `owner` may start another restore under `maxConcurrentPerDropper` (0: no per-dropper bound).
    private func ownerHasRoom(_ owner: uid_t) -> Bool {
        settings.maxConcurrentPerDropper <= 0 || running.values.filter { $0.owner == owner }.count < settings.maxConcurrentPerDropper
    }

    func start(jobId: String, name: String, resume: Bool, attempt: Int, owner: uid_t? = nil) {
        let control = JobControl()
        running[name] = RunningJob(jobId: jobId, control: control, attempt: attempt, owner: owner)
        let runner = JobRunner(
            jobId: jobId, name: name, resume: resume, attempt: attempt, agent: self, control: control,
            logger: logger.with(["request.name": "\(name)", "job.id": "\(jobId)"]))
        let task = Task { [weak self] in
            await runner.run()
            await self?.jobEnded(name: name)
        }
        control.attach(task)
    }

    private func jobEnded(name: String) {
        running[name] = nil
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
