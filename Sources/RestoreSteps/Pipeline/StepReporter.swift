/// Progress of the running step, as the status file shows it.
public struct StepProgress: Sendable, Codable, Hashable {
    /// Bytes (or other units) done so far.
    public var bytesDone: Int64?
    /// Total expected, when known.
    public var bytesTotal: Int64?
    /// 0…1, when known.
    public var fraction: Double?
    /// Estimated seconds to the end of the step, when known.
    public var etaSeconds: Double?
    /// A short human line ("importasdm uid___A002_X1_X1", "2 of 5 files").
    public var message: String?

    public init(
        bytesDone: Int64? = nil, bytesTotal: Int64? = nil, fraction: Double? = nil, etaSeconds: Double? = nil,
        message: String? = nil
    ) {
        self.bytesDone = bytesDone
        self.bytesTotal = bytesTotal
        self.fraction =
            fraction
            ?? bytesTotal.flatMap { total in
                guard total > 0, let done = bytesDone else { return nil }
                return min(1, Double(done) / Double(total))
            }
        self.etaSeconds = etaSeconds
        self.message = message
    }
}

/// Where a step reports its progress. The agent turns reports into (rate-limited) status-file updates.
public protocol StepReporter: Sendable {
    /// Reports progress of the current step. Cheap to call often: implementations rate-limit.
    func report(_ progress: StepProgress)
    /// Throws unless the job may still write results (the fencing check before publishing: an agent whose lease
    /// was taken over must not publish). Default: always allowed.
    func confirmOwnership() throws
    /// Reports where CASA runs (backend, job ids, the scheduler's state) for the status file's `execution`.
    /// Default: dropped.
    func reportExecution(_ execution: ExecutionStatus)
}

extension StepReporter {
    public func confirmOwnership() throws {}
    public func reportExecution(_ execution: ExecutionStatus) {}
}

/// A reporter that drops every report (for tools such as `validate --plan`).
public struct SilentReporter: StepReporter {
    public init() {}
    public func report(_ progress: StepProgress) {}
}
