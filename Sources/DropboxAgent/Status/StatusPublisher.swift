import Delivery
import FoundationEssentials
import Glibc
import Logging
import RestoreSteps
import Synchronization

/// Keeps one request's status document and publishes it atomically on every change: into its record in the job
/// store (``StatusRecords``, the state other agents and later decisions read), then into the status file next to
/// the request (the output, never read back).
///
/// State and step changes are written at once (temp + fsync + rename + directory fsync); progress reports
/// are coalesced to at most one write every `progressInterval`, and the last one is never lost because
/// every later state change writes the full document.
///
/// State changes are written by the caller (JobRunner's bookkeeping, on ``Bookkeeping/executor``); progress
/// writes are handed to that executor, never made on the cooperative pool.
///
/// Writes never go backwards: each document is given the next `sequence` under the state lock, and written
/// under a second lock that skips a document older than the one already on disk (that newer one includes its
/// change). Reports come from the step's task and from blocking threads (extraction, publishing) at once.
final class StatusPublisher: StepReporter, Sendable {
    let path: String
    /// The spool directory `path` is in (the dashboard of that spool is fed every document written).
    private let spoolDirectory: String
    /// The request's record in the job store, written before the status file (nil: the status file alone).
    let recordPath: String?
    private let mode: mode_t
    private let progressInterval: Double
    private let logger: Logger
    /// The fencing check (nil: none): when it returns false nothing more is written and ``update(_:)`` throws
    /// ``LeaseLost``.
    private let fence: (@Sendable () -> Bool)?
    /// Runs the visible step of a write (the rename) under the lease lock if the lease is still this job's, and
    /// says whether it did (nil: no lease, plain writes). The check before the write is not enough: an agent
    /// stopped (SIGSTOP, a stall) between that check and its rename would publish a stale document after another
    /// agent took the job over; under the lock the other agent's takeover waits for the rename, or comes first
    /// and the rename does not happen.
    private let commit: (@Sendable (_ rename: () throws -> Void) throws -> Bool)?
    private struct State {
        var document: StatusDocument
        var lastProgressWrite: Double = 0
        var stepStartedAt: Double = Date().timeIntervalSince1970
    }
    private let state: Mutex<State>
    /// The sequence number of the document on disk; held while writing, so writes land in sequence order.
    private let written: Mutex<Int>

    /// - Parameters:
    ///   - path: `<spool>/<NAME>.status.json`.
    ///   - recordPath: `<work>/status/<NAME>.json` (``StatusRecords/recordPath(_:)``), written first.
    ///   - document: the starting document (from the record when resuming, so history continues).
    ///   - fence: checked before every write; false means another agent holds the job now.
    ///   - commit: makes the rename of every write conditional on the lease (see the property).
    init(
        path: String, recordPath: String? = nil, document: StatusDocument, mode: mode_t = 0o644,
        progressInterval: Double = 0.5, logger: Logger, fence: (@Sendable () -> Bool)? = nil,
        commit: (@Sendable (_ rename: () throws -> Void) throws -> Bool)? = nil
    ) {
        self.commit = commit
        self.path = path
        self.spoolDirectory = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
        self.recordPath = recordPath
        self.fence = fence
        self.mode = mode
        self.progressInterval = progressInterval
        self.logger = logger
        self.state = Mutex(State(document: document))
        self.written = Mutex(document.sequence ?? 0)
    }

    /// The status document in the file at `path`, if there is a readable one: for readers of the output (the
    /// `status` and `cancel` commands, the dashboard, tests). The agent's own decisions read ``StatusRecords``.
    static func existing(at path: String) -> StatusDocument? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? StatusDocument.decode(data)
    }

    var document: StatusDocument { state.withLock { $0.document } }

    /// Changes the document and writes it.
    func update(_ change: (inout StatusDocument) -> Void) throws {
        if let fence, !fence() { throw LeaseLost() }
        let (sequence, data, document) = try state.withLock { s -> (Int, Data, StatusDocument) in
            change(&s.document)
            s.document.updatedAt = Timestamp.now()
            s.document.advanceSequence()
            return (s.document.sequence ?? 0, try s.document.encoded(), s.document)
        }
        try write(data, sequence: sequence, document: document)
    }

    /// Writes `data` (the record, then the status file) unless a document with a higher sequence is already on
    /// disk.
    private func write(_ data: Data, sequence: Int, document: StatusDocument) throws {
        try written.withLock { onDisk in
            guard sequence > onDisk else { return }
            if let recordPath { try write(data, to: recordPath, mode: 0o600) }
            DashboardFeed.published(document, spool: spoolDirectory)
            try write(data, to: path, mode: mode)
            onDisk = sequence
        }
    }

    private func write(_ data: Data, to path: String, mode: mode_t) throws {
        if let commit {
            guard try AtomicFile.write(data, to: path, mode: mode, commit: commit) else { throw LeaseLost() }
        } else {
            // The fence again right before the rename (after the fsync): an owner stalled during the write must
            // not replace the status once another agent holds the job.
            let fence = self.fence
            guard try AtomicFile.write(data, to: path, mode: mode, if: { fence?() ?? true }) else {
                throw LeaseLost()
            }
        }
    }

    /// Moves to a new state/step, logging one line for the change.
    func transition(
        to newState: RequestState, step: StepName? = nil, message: String? = nil,
        _ change: (inout StatusDocument) -> Void = { _ in }
    ) throws {
        try update { doc in
            doc.transition(to: newState, step: step, message: message)
            change(&doc)
        }
        state.withLock { $0.stepStartedAt = Date().timeIntervalSince1970 }
        var meta: Logger.Metadata = ["request.name": "\(document.request)", "state": "\(newState.rawValue)"]
        if let step { meta["step"] = "\(step.number) \(step.rawValue)" }
        if let message { meta["detail"] = "\(message)" }
        let doc = document
        if let code = doc.error?.code, newState.isTerminal { meta["error.code"] = "\(code)" }
        if newState.isTerminal, let started = doc.startedAt.flatMap(Timestamp.date) {
            meta["duration.seconds"] = .stringConvertible((Date().timeIntervalSince(started) * 1000).rounded() / 1000)
        }
        // Failures at error and cancellations at warning, so `journalctl -p warning` shows every one.
        let level: Logger.Level =
            switch newState {
            case .failed, .rejected: .error
            case .cancelled: .warning
            default: .info
            }
        logger.log(level: level, "request state changed", metadata: meta)
    }

    /// The fencing check before publishing results.
    func confirmOwnership() throws {
        if let fence, !fence() { throw LeaseLost() }
    }

    func reportExecution(_ execution: ExecutionStatus) {
        do {
            try update { $0.execution = execution }
        } catch {
            logger.warning("cannot record the execution state in the status file", metadata: ["error": "\(error)"])
        }
    }

    func report(_ progress: StepProgress) {
        let now = Date().timeIntervalSince1970
        let encoded: (Int, Data, StatusDocument)? = state.withLock { s in
            var eta = progress.etaSeconds
            if eta == nil, let fraction = progress.fraction, fraction > 0.01, fraction < 1 {
                let elapsed = now - s.stepStartedAt
                eta = (elapsed / fraction - elapsed).rounded()
            }
            s.document.progress = StatusDocument.Progress(
                bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal,
                fraction: progress.fraction.map { ($0 * 1000).rounded() / 1000 },
                etaSeconds: eta, message: progress.message)
            guard now - s.lastProgressWrite >= progressInterval || progress.fraction == 1 else { return nil }
            s.lastProgressWrite = now
            s.document.updatedAt = Timestamp.now()
            s.document.advanceSequence()
            return (try? s.document.encoded()).map { (s.document.sequence ?? 0, $0, s.document) }
        }
        guard let (sequence, data, document) = encoded else { return }
        // Reports come from the step's task on the cooperative pool, too: the fencing read and the write (fsync,
        // rename, directory fsync) go to the bookkeeping threads. Order is kept by the sequence (an older document
        // arriving later is skipped), and every state change after this writes the whole document at once.
        Task(executorPreference: Bookkeeping.executor) { [self] in
            guard fence?() ?? true else { return }
            do { try write(data, sequence: sequence, document: document) } catch is LeaseLost {
                return  // another agent holds the job now: nothing more is written
            } catch {
                logger.warning(
                    "could not write progress to the status file", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }
}
