/// What a ``JobRunner`` may use of the agent that owns it: the shared services, each safe from any thread, and
/// none of the owner's scheduling state (queue, slots, pending files). The runner reports through them — the job
/// store (checkpoint, lease), the status records, the journal, the metrics, the notifier — and asks the executor to run the
/// steps; it never reaches into ``SpoolAgent`` itself.
protocol JobOwner: Sendable {
    /// The spool's settings (directories, modes, attempts).
    var settings: SpoolAgent.Settings { get }
    /// Claimed jobs: checkpoints, leases, the finished area, the idempotency index.
    var store: JobStore { get }
    /// The requests' status records (the state) and status files (the output written from them).
    var records: StatusRecords { get }
    /// The audit trail of states, steps and attempts.
    var journal: Journal { get }
    /// Runs the six steps (production: real CASA; tests: test-only steps).
    var executor: any RestoreExecutor { get }
    /// Queues and sends the outcome mail.
    var notifier: any Notifier { get }
    /// Counters and durations for the metrics endpoint and textfile.
    var metrics: AgentMetrics { get }
    /// Waits until the job `name` may hold a restore slot (at once unless it was started in the fast lane).
    func acquireSlot(name: String) async
}

extension SpoolAgent: JobOwner {}

extension JobOwner {
    /// Owners without a fast lane never make a job wait.
    func acquireSlot(name: String) async {}
}
