import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// One claimed request as the executor sees it.
struct ExecutionJob: Sendable {
    var jobId: String
    var name: String
    var request: RestoreRequest
    /// The request's working area root (`SCIPIPE_ROOTDIR`).
    var restoreRoot: String
    /// The job directory in the shared work area (checkpoint, lease, child-process records).
    var jobDirectory: String
    var attempt: Int
    var logger: Logger
    /// Called by the executor before it runs CASA: a job started outside the slots (fast lane) waits for one here.
    var waitForSlot: (@Sendable () async -> Void)? = nil
}

/// What a finished restore produced, for the status file and the notification.
struct ExecutionResult: Sendable, Equatable {
    var result: StatusDocument.Result?
    /// Facts for the notification text (project, MOUS, EB count, …).
    var facts: [String: String] = [:]
    /// The CASA chosen for the restore, once known.
    var casa: StatusDocument.CASA?
    /// Warnings for the status file and the mail (CASA versions that differ).
    var warnings: [String] = []
}

/// Runs the restore pipeline of one request. Production: the six real steps (``ProductionExecutor``);
/// tests may supply their own steps.
protocol RestoreExecutor: Sendable {
    /// Runs every step not yet completed; returns how it ended.
    func execute(
        _ job: ExecutionJob, completed: Set<StepName>, observer: any PipelineObserver, reporter: any StepReporter
    ) async -> (PipelineOutcome, ExecutionResult)

    /// Removes the working area as configured once the request ended (`never`, `onSuccess`, `always`).
    func cleanUp(_ job: ExecutionJob, succeeded: Bool) async

    /// What the status file can show while the restore runs (the CASA choice once step 1 made it); nil: nothing.
    func runningFacts(_ job: ExecutionJob) -> ExecutionResult?

    /// The file cache's counters (hits, misses, bytes fetched) for the metrics; nil without a cache.
    func cacheStatistics() async -> CacheStatistics?

    /// Whether a restore of `mous` is kept for reuse, so that a request for it may start without a slot.
    func mayReuse(mous: String) -> Bool

    /// A request linked to an identical one that succeeded (`linkedTo`) shares its delivery: it expires with it, and
    /// its own status file then says so too (`result.expiredAt`). Blocking file work; never fails the request.
    func linkedToDelivery(jobId: String, statusPath: String, result: StatusDocument.Result?, logger: Logger)
}

extension RestoreExecutor {
    /// Whether a restore of `mous` is kept for reuse (the request may then start without a slot).
    func mayReuse(mous: String) -> Bool { false }
    func linkedToDelivery(jobId: String, statusPath: String, result: StatusDocument.Result?, logger: Logger) {}
    func runningFacts(_ job: ExecutionJob) -> ExecutionResult? { nil }
    func cacheStatistics() async -> CacheStatistics? { nil }
}

/// Sends the completion notification of a request; never fails the request.
protocol Notifier: Sendable {
    func notify(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String]
    ) async -> [StatusDocument.Notification]
    /// Queues the notification durably for sending outside the job (default: sends at once with ``notify``).
    /// - Parameters:
    ///   - id: one message per id (the job id): a resumed conclusion does not queue it twice.
    ///   - jobDirectory: where the concluded job will be kept; the status is updated only while it points there.
    func enqueue(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String], id: String, statusPath: String,
        jobDirectory: String
    ) async -> [StatusDocument.Notification]
    /// Sends what is due in the queue (default: nothing queued).
    func sendQueued() async
}

extension Notifier {
    func enqueue(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String], id: String, statusPath: String,
        jobDirectory: String
    ) async -> [StatusDocument.Notification] {
        await notify(status, request: request, facts: facts)
    }
    func sendQueued() async {}
}

/// Runs a pipeline built per job by `makePipeline`.
struct PipelineExecutor<Context: Sendable>: RestoreExecutor {
    let makeContext: @Sendable (ExecutionJob) async throws -> Context
    let pipeline: RestorePipeline<Context>
    let result: @Sendable (Context) async -> ExecutionResult
    let clean: @Sendable (ExecutionJob, Bool) async -> Void

    func execute(
        _ job: ExecutionJob, completed: Set<StepName>, observer: any PipelineObserver, reporter: any StepReporter
    ) async -> (PipelineOutcome, ExecutionResult) {
        let context: Context
        do { context = try await makeContext(job) } catch let error as RestoreError {
            return (.failed(error), ExecutionResult())
        } catch {
            return (.failed(RestoreError(.internalError, "cannot set up the restore: \(error)")), ExecutionResult())
        }
        let outcome = await pipeline.run(context, completed: completed, observer: observer, reporter: reporter)
        return (outcome, await result(context))
    }

    func cleanUp(_ job: ExecutionJob, succeeded: Bool) async { await clean(job, succeeded) }
}
