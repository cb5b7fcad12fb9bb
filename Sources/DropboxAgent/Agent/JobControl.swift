import Synchronization

/// Why a running job is being stopped.
enum StopReason: String, Sendable {
    /// `NAME.cancel` or `dropbox-agent cancel`: the request ends as `cancelled`.
    case cancelRequested
    /// SIGTERM/SIGINT: the job is checkpointed and resumes later.
    case shutdown
    /// Another agent holds the lease now (this one was presumed dead): stop without touching the status.
    case leaseLost
}

/// Shared between the agent and one job's task: the stop request and the running task.
final class JobControl: Sendable {
    private let reason = Mutex<StopReason?>(nil)
    private let task = Mutex<Task<Void, Never>?>(nil)

    var stopReason: StopReason? { reason.withLock { $0 } }

    /// Asks the job to stop. A shutdown first lets the current step finish; the others interrupt it.
    func stop(_ why: StopReason, interruptNow: Bool) {
        reason.withLock { current in
            // A cancellation wins over a shutdown; a lost lease wins over everything.
            if current == nil || why == .leaseLost || (why == .cancelRequested && current == .shutdown) {
                current = why
            }
        }
        if interruptNow { task.withLock { $0?.cancel() } }
    }

    func attach(_ t: Task<Void, Never>) { task.withLock { $0 = t } }

    /// Interrupts the running step (used when the shutdown grace period is over).
    func interrupt() { task.withLock { $0?.cancel() } }
}
