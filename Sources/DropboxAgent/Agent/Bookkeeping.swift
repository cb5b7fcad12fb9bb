import Delivery
import Synchronization

/// Where a job's own blocking bookkeeping runs: checkpoint and lease files (fsync, `flock`), journal rows
/// (SQLite, `synchronous=FULL`), status files (fsync, rename, directory fsync). Two dedicated threads shared by
/// all jobs, never the cooperative pool (one thread per core), so a slow disk delays bookkeeping, not the watcher,
/// cancellation or other jobs' steps. Long work (extraction, hashing, copies) stays in ``BlockingWork``.
enum Bookkeeping {
    static let executor = ThreadPoolTaskExecutor(name: "bookkeeping", threads: 2)

    /// The runtime's own periodic work: the dashboard (reads every status file, writes HTML with fsync), the mail
    /// queue (directory scans, queue and status files; SMTP itself in ``BlockingWork``), the metrics textfile and
    /// the `/proc` scan for CASA processes. Two threads of their own (a slow dashboard write does not hold up the
    /// housekeeping loop and its watchdog ping), so neither jobs' bookkeeping nor the pool waits
    /// for them.
    static let housekeeping = ThreadPoolTaskExecutor(name: "housekeeping", threads: 2)

    /// Job bookkeeping writes made on the bookkeeping threads, and elsewhere (the tests assert the second stays 0).
    static let writesOnExecutor = Atomic<Int>(0)
    static let writesElsewhere = Atomic<Int>(0)

    /// Counts one bookkeeping write by where it runs.
    static func noteWrite() {
        if executor.isCurrentThread {
            writesOnExecutor.add(1, ordering: .relaxed)
        } else {
            writesElsewhere.add(1, ordering: .relaxed)
        }
    }
}
