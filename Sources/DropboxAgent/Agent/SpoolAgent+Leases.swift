import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - Recovery and leases

extension SpoolAgent {
    /// Resumes jobs whose lease is free: our own after a crash or clean stop, others' after expiry.
    func recoverJobs() {
        for jobId in store.activeJobIds() where !running.values.contains(where: { $0.jobId == jobId }) {
            guard !draining, running.count < settings.maxConcurrentRestores else { return }
            let dir = store.jobDirectory(jobId)
            guard let lease = store.readLease(jobId: jobId) else { continue }
            guard lease.isAvailable() else { continue }
            // Waiting to retry after a transient failure (the archive was down): not before its time.
            if let retryAt = store.readCheckpoint(jobId: jobId)?.retryAt, retryAt > Date().timeIntervalSince1970 {
                continue
            }
            let hasRequest = access(dir + "/request.json", F_OK) == 0
            if !hasRequest {
                // A claim interrupted before its rename: the request is still in the spool (or was never ours).
                try? FileManager.default.removeItem(atPath: dir)
                continue
            }
            let ownCleanStop = lease.released && lease.owner.host == AgentIdentity.current.host
            do {
                // A crash while concluding is not a failed attempt: the restore itself had ended.
                let counts = !lease.released && lease.concludes == nil
                guard let newLease = try store.takeOver(jobId: jobId, from: lease, countsAsAttempt: counts) else {
                    continue
                }
                metrics.add(ownCleanStop ? \.resumes : \.takeovers)
                let name = store.readCheckpoint(jobId: jobId)?.name ?? String(jobId.split(separator: ".").first ?? "")
                logger.notice(
                    lease.released ? "resuming a request" : "taking over a request",
                    metadata: [
                        "job.id": "\(jobId)", "request.name": "\(name)",
                        "attempt": .stringConvertible(newLease.attempt),
                        "previous.owner": "\(lease.owner.host):\(lease.owner.pid)",
                    ])
                start(jobId: jobId, name: name, request: nil, attempt: newLease.attempt)
            } catch {
                logger.error("cannot take over a job", metadata: ["job.id": "\(jobId)", "error": "\(error)"])
            }
        }
    }
}
