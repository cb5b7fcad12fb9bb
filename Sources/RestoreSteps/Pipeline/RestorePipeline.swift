/// One restore step: idempotent, so that running it again after a crash part-way is safe.
///
/// A step reads everything it needs from its context and from the files earlier steps left in the working
/// area (never from memory of an earlier run), so the pipeline can resume at any step after a restart.
public protocol PipelineStep<Context>: Sendable {
    /// The context type the step works on (the real restore context, or a test's).
    associatedtype Context: Sendable
    /// Which of the six steps this is.
    var name: StepName { get }
    /// Runs the step. Throws ``RestoreError`` for a failure a person should see; honours task cancellation.
    func run(in context: Context, reporter: any StepReporter) async throws
}

/// Told about each step as it starts and ends, before the pipeline moves on. The agent records these in its
/// journal and status file; if recording fails, the pipeline stops (it must never run ahead of its records).
public protocol PipelineObserver: Sendable {
    /// Called before `step` runs.
    func stepWillStart(_ step: StepName) async throws
    /// Called after `step` completed successfully.
    func stepDidComplete(_ step: StepName) async throws
}

/// How a pipeline run ended.
public enum PipelineOutcome: Sendable, Equatable {
    /// Every step completed.
    case succeeded
    /// A step failed; the error names it.
    case failed(RestoreError)
    /// The task was cancelled while `step` was running (or before it started).
    case cancelled(at: StepName?)
}

/// The six restore steps run in order, resuming after the ones already completed.
public struct RestorePipeline<Context: Sendable>: Sendable {
    /// The steps, strictly in contract order.
    public let steps: [any PipelineStep<Context>]

    /// Creates a pipeline; the steps must be in strictly increasing step order (a test may leave some out).
    public init(steps: [any PipelineStep<Context>]) {
        precondition(zip(steps, steps.dropFirst()).allSatisfy { $0.name < $1.name }, "steps out of order")
        self.steps = steps
    }

    /// Runs every step not in `completed`, in order.
    ///
    /// - Parameters:
    ///   - context: what the steps work on.
    ///   - completed: steps a previous run already finished (from the journal); they are not run again.
    ///   - observer: records step transitions before the pipeline proceeds.
    ///   - reporter: receives progress from the running step.
    /// - Returns: the outcome; step failures are returned, not thrown, with ``RestoreError/step`` set.
    public func run(
        _ context: Context,
        completed: Set<StepName> = [],
        observer: any PipelineObserver,
        reporter: any StepReporter
    ) async -> PipelineOutcome {
        for step in steps where !completed.contains(step.name) {
            if Task.isCancelled { return .cancelled(at: step.name) }
            do {
                try await observer.stepWillStart(step.name)
                try await step.run(in: context, reporter: reporter)
                try Task.checkCancellation()
                try await observer.stepDidComplete(step.name)
            } catch is CancellationError {
                return .cancelled(at: step.name)
            } catch var error as RestoreError {
                if error.code == .cancelled { return .cancelled(at: step.name) }
                error.step = error.step ?? step.name
                return .failed(error)
            } catch {
                if Task.isCancelled { return .cancelled(at: step.name) }
                return .failed(
                    RestoreError(
                        .internalError, "\(error)",
                        hint: "This is a bug or an unexpected system error; the log has details.", step: step.name))
            }
        }
        return .succeeded
    }
}
