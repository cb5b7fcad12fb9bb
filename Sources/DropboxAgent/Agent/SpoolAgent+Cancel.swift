import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

// MARK: - Cancellation

extension SpoolAgent {
    func handleCancel(name: String, entry: String) {
        if let job = running[name] {
            logger.notice("cancellation requested", metadata: ["request.name": "\(name)", "job.id": "\(job.jobId)"])
            _ = rename(settings.spoolDirectory + "/" + entry, store.jobDirectory(job.jobId) + "/cancel")
            job.control.stop(.cancelRequested, interruptNow: true)
            return
        }
        let isHere = access(settings.spoolDirectory + "/" + name + ".json", F_OK) == 0
        if isHere {
            // Waiting or queued: claim it so no other agent starts it, then end it as cancelled.
            pending[name] = nil
            queue.removeAll { $0.name == name }
            do {
                guard let jobId = try store.claim(name: name) else { return }
                _ = rename(settings.spoolDirectory + "/" + entry, store.jobDirectory(jobId) + "/cancel")
                // Status first, then the move (a kill in between leaves a job that is resumed, not a stale status).
                let finished = store.finishedDirectory + "/" + jobId
                var doc =
                    records.read(name) ?? StatusDocument(request: name, state: .cancelled)
                doc.requestFile = finished + "/request.json"
                doc.agent = .init(host: AgentIdentity.current.host, pid: AgentIdentity.current.pid)
                doc.transition(to: .cancelled, message: "cancelled before it started")
                doc.advanceSequence()
                try records.write(doc, name: name)
                _ = try store.finish(jobId: jobId, name: name, state: .cancelled, statusPath: statusPath(name))
                try? journal.record(doc, jobId: jobId, attempt: 0, jobDirectory: finished, statusPath: statusPath(name))
                logger.warning("request state changed", metadata: ["request.name": "\(name)", "state": "cancelled"])
            } catch {
                logger.error(
                    "cannot cancel a queued request", metadata: ["request.name": "\(name)", "error": "\(error)"])
            }
            return
        }
        if let status = records.read(name) {
            if !status.state.isTerminal, let agent = status.agent,
                agent.host != AgentIdentity.current.host || agent.pid != AgentIdentity.current.pid
            {
                return  // another agent runs it and will see the cancel file at its next step
            }
            if !status.state.isTerminal { return }  // a takeover may pick it up
            _ = try? store.quarantine(
                entry: entry, reason: "request \(name) has already ended (\(status.state.rawValue)); nothing to cancel",
                code: .nothingToCancel)
        } else {
            _ = try? store.quarantine(entry: entry, reason: "there is no request named \(name)", code: .nothingToCancel)
        }
        logger.notice("cancellation ignored", metadata: ["request.name": "\(name)", "reason": "nothing to cancel"])
    }
}
