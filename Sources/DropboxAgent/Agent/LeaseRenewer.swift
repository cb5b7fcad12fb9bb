import Delivery
import FoundationEssentials
import Glibc
import Logging
import Synchronization

/// Renews the leases of this agent's running jobs on a thread of its own, at fixed deadlines
/// (`start + k × interval`), so a heartbeat is never late because of other work.
///
/// Before, renewal was one call in the runtime's housekeeping loop (`sleep(interval)`, then renew, recover, pump,
/// metrics, a `/proc` scan, the sweeper), and it ran on the `SpoolAgent` actor: every heartbeat came the duration
/// of that other work after the previous one (5.41 s for a 5 s interval with two agents and a busy spool), and
/// waited for the actor whenever intake kept it busy. Here nothing else runs on the renewal thread, the schedule
/// does not accumulate the time renewals take, and the jobs to renew are read from a registry under a lock, not
/// from the actor. The renewals themselves (`flock`, a small atomic write with fsync) block only this thread.
final class LeaseRenewer: Sendable {
    /// A job whose lease this agent renews.
    struct Held: Sendable {
        var jobId: String
        var name: String
        /// The fencing token the renewal compares against.
        var attempt: Int
        var control: JobControl
    }

    let interval: Double
    private let store: JobStore
    private let logger: Logger
    private let held = Mutex<[String: Held]>([:])
    private let condition = ConditionLock()
    private let state = Mutex<(started: Bool, stopped: Bool)>((false, false))
    /// Renewal passes made (for tests and the metrics).
    let passes = Atomic<Int>(0)
    /// The monotonic time of the agent's last housekeeping round (``noteAlive()``), and how old it may be before
    /// renewals stop (nil: no such gate). A hung agent must not keep its jobs forever: once its work loop stops
    /// for that long, its leases are left to expire and another agent takes the jobs over.
    private let alive = Mutex<(last: Double, limit: Double?)>((0, nil))
    /// Tests only: called at the start of every pass on the renewal thread (to record or slow passes).
    private let beforePass: (@Sendable () -> Void)?

    /// - Parameters:
    ///   - interval: seconds between renewals (the runtime uses `leaseSeconds / 3`, 0.5 s to 10 s).
    init(store: JobStore, interval: Double, logger: Logger, beforePass: (@Sendable () -> Void)? = nil) {
        self.store = store
        self.interval = interval
        self.logger = logger
        self.beforePass = beforePass
    }

    /// Starts renewing `job`'s lease (from the next deadline on).
    func hold(_ job: Held) { held.withLock { $0[job.jobId] = job } }

    /// Stops renewing the lease of `jobId` (the job ended, or released its lease).
    func release(jobId: String) { _ = held.withLock { $0.removeValue(forKey: jobId) } }

    /// Renewals continue only while ``noteAlive()`` is called at least every `seconds`.
    func requireLiveness(within seconds: Double) {
        alive.withLock { $0 = (Self.monotonicNow(), seconds) }
    }

    /// The agent's work loop completed a round.
    func noteAlive() { alive.withLock { $0.last = Self.monotonicNow() } }

    /// The jobs renewed now.
    var heldJobs: [Held] { held.withLock { Array($0.values) } }

    /// Starts the renewal thread (once).
    func start() {
        let first = state.withLock { s -> Bool in
            defer { s.started = true }
            return !s.started && !s.stopped
        }
        guard first else { return }
        NativeThread.start(name: "lease-renewer") { [self] in loop() }
    }

    /// Stops the thread at once (it may be in the middle of one renewal pass, which it finishes).
    func stop() {
        state.withLock { $0.stopped = true }
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// The next renewal deadline after the pass that was due at `due` ended at `now`: the next point of the grid
    /// `due + k × interval` that is still ahead. A pass that overran skips the deadlines it missed rather than
    /// renewing twice in a row; a pass never moves the grid, so time spent renewing does not accumulate.
    static func nextDeadline(after due: Double, now: Double, interval: Double) -> Double {
        let next = due + interval
        guard next <= now else { return next }
        return due + (((now - due) / interval).rounded(.down) + 1) * interval
    }

    /// One pass: renews every held lease (compare-and-set on the attempt); a job whose lease another agent now
    /// holds is stopped at once and writes nothing more. A lease its job has released stays released.
    func renewAll() {
        let (last, limit) = alive.withLock { $0 }
        let silent = limit.map { Self.monotonicNow() - last > $0 } ?? false
        if silent {
            logger.error(
                "the agent's work loop has not run for \(Int(Self.monotonicNow() - last)) s: leases are no longer renewed, so other agents can take the jobs over"
            )
        }
        for job in heldJobs {
            do {
                // While the work loop is silent, leases are only checked (a lost one still stops its job at once).
                let ours =
                    silent
                    ? store.holdsLease(jobId: job.jobId, attempt: job.attempt)
                    : try store.renewLease(jobId: job.jobId, attempt: job.attempt, keepReleased: true) != nil
                if !ours {
                    let lease = store.readLease(jobId: job.jobId)
                    logger.error(
                        "lease taken over by another agent; stopping",
                        metadata: [
                            "request.name": "\(job.name)", "job.id": "\(job.jobId)",
                            "attempt": .stringConvertible(job.attempt),
                            "owner":
                                "\(lease.map { "\($0.owner.host):\($0.owner.pid) attempt \($0.attempt)" } ?? "none")",
                        ])
                    release(jobId: job.jobId)
                    job.control.stop(.leaseLost, interruptNow: true)
                }
            } catch {
                logger.warning("cannot renew a lease", metadata: ["job.id": "\(job.jobId)", "error": "\(error)"])
            }
        }
        passes.add(1, ordering: .relaxed)
    }

    private var isStopped: Bool { state.withLock { $0.stopped } }

    private func loop() {
        var due = Self.monotonicNow() + interval
        while true {
            // Sleep until the deadline (a stop wakes it at once).
            condition.lock()
            while !isStopped {
                let remaining = due - Self.monotonicNow()
                if remaining <= 0 { break }
                condition.wait(seconds: remaining)
            }
            condition.unlock()
            if isStopped { return }
            beforePass?()
            renewAll()
            due = Self.nextDeadline(after: due, now: Self.monotonicNow(), interval: interval)
        }
    }

    /// Seconds on the monotonic clock (not changed by setting the time of day).
    static func monotonicNow() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
