import FoundationEssentials
import Glibc
import RestoreSteps
import Synchronization

/// Records step transitions durably before the pipeline moves on, and stops it when asked. Called by the pipeline
/// on the cooperative pool, it does its file, journal and status writes on ``Bookkeeping/executor``'s threads.
final class JobObserver: PipelineObserver, Sendable {
    private let runner: JobRunner
    private let state: Mutex<JobCheckpoint>
    private let publisher: StatusPublisher
    private let attempt: Int
    private let job: ExecutionJob

    init(runner: JobRunner, checkpoint: JobCheckpoint, publisher: StatusPublisher, attempt: Int, job: ExecutionJob) {
        self.runner = runner
        self.state = Mutex(checkpoint)
        self.publisher = publisher
        self.attempt = attempt
        self.job = job
    }

    var checkpoint: JobCheckpoint { state.withLock { $0 } }

    func stepWillStart(_ step: StepName) async throws {
        try await withTaskExecutorPreference(Bookkeeping.executor) { try await self.recordStart(step) }
    }

    func stepDidComplete(_ step: StepName) async throws {
        try await withTaskExecutorPreference(Bookkeeping.executor) { try await self.recordCompletion(step) }
    }

    private func recordStart(_ step: StepName) async throws {
        if access(runner.spoolCancelPath(), F_OK) == 0 {
            _ = rename(runner.spoolCancelPath(), runner.jobDirectoryPath + "/cancel")
        }
        // Also a cancel moved here before a crash: a resumed job honours it.
        if access(runner.jobDirectoryPath + "/cancel", F_OK) == 0 {
            runner.control.stop(.cancelRequested, interruptNow: false)
        }
        if runner.control.stopReason != nil { throw CancellationError() }
        do { try runner.fence() } catch { throw CancellationError() }
        Bookkeeping.noteWrite()
        runner.journalStep(step, attempt: attempt, started: true)
        runner.agent.metrics.detail.stepStarted(jobId: runner.jobId, step: step)
        try publisher.transition(to: .running, step: step)
    }

    private func recordCompletion(_ step: StepName) async throws {
        let snapshot = state.withLock { c -> JobCheckpoint in
            if !c.completedSteps.contains(step) { c.completedSteps.append(step) }
            return c
        }
        // The checkpoint is shared with whoever takes the job over: a stalled owner must not write it any more.
        do { try runner.fence() } catch { throw CancellationError() }
        try runner.saveCheckpoint(snapshot)
        runner.journalStep(step, attempt: attempt, started: false)
        runner.agent.metrics.detail.stepCompleted(jobId: runner.jobId, step: step)
        // Say which CASA will run as soon as it is chosen (step 1) and once the manifest is read (step 3).
        if step == .prepare || step == .calibration, let facts = runner.agent.executor.runningFacts(job),
            facts.casa != publisher.document.casa
        {
            try publisher.update { $0.record(casa: facts.casa, warning: facts.warnings.first) }
        }
    }
}

/// What the observer may ask of its runner.
extension JobRunner {
    fileprivate func spoolCancelPath() -> String { settings.spoolDirectory + "/" + name + ".cancel" }
    fileprivate func journalStep(_ step: StepName, attempt: Int, started: Bool, outcome: String = "completed") {
        if started {
            try? agent.journal.stepStarted(jobId: jobId, step: step.rawValue, attempt: attempt, at: Timestamp.now())
        } else {
            try? agent.journal.stepEnded(
                jobId: jobId, step: step.rawValue, attempt: attempt, at: Timestamp.now(), outcome: outcome)
        }
    }
    fileprivate var jobDirectoryPath: String { directory }
    fileprivate func fence() throws { try checkFence() }
    fileprivate func saveCheckpoint(_ c: JobCheckpoint) throws {
        Bookkeeping.noteWrite()
        try store.writeCheckpoint(c)
    }
}
