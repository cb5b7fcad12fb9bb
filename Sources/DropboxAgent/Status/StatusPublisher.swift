import Delivery
import Foundation
import Logging
import RestoreSteps
import Synchronization

/// Keeps one request's status document and writes it next to the request atomically on every change.
///
/// State and step changes are written at once (temp + fsync + rename + directory fsync); progress reports
/// are coalesced to at most one write every `progressInterval`, and the last one is never lost because
/// every later state change writes the full document.
final class StatusPublisher: StepReporter, Sendable {
    let path: String
    private let mode: mode_t
    private let progressInterval: Double
    private let logger: Logger
    private struct State {
        var document: StatusDocument
        var lastProgressWrite: Double = 0
        var stepStartedAt: Double = Date().timeIntervalSince1970
    }
    private let state: Mutex<State>

    /// - Parameters:
    ///   - path: `<spool>/<NAME>.status.json`.
    ///   - document: the starting document (read back from disk when resuming, so history continues).
    init(path: String, document: StatusDocument, mode: mode_t = 0o644, progressInterval: Double = 0.5, logger: Logger) {
        self.path = path
        self.mode = mode
        self.progressInterval = progressInterval
        self.logger = logger
        self.state = Mutex(State(document: document))
    }

    /// The existing status document at `path`, if there is a readable one.
    static func existing(at path: String) -> StatusDocument? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? StatusDocument.decode(data)
    }

    var document: StatusDocument { state.withLock { $0.document } }

    /// Changes the document and writes it.
    func update(_ change: (inout StatusDocument) -> Void) throws {
        let data = try state.withLock { s -> Data in
            change(&s.document)
            s.document.updatedAt = Timestamp.now()
            return try s.document.encoded()
        }
        try AtomicFile.write(data, to: path, mode: mode)
    }

    /// Moves to a new state/step, logging one line for the change.
    func transition(to newState: RequestState, step: StepName? = nil, message: String? = nil, _ change: (inout StatusDocument) -> Void = { _ in }) throws {
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
        let level: Logger.Level = switch newState {
        case .failed, .rejected: .error
        case .cancelled: .warning
        default: .info
        }
        logger.log(level: level, "request state changed", metadata: meta)
        DashboardTrigger.poke()
    }

    func report(_ progress: StepProgress) {
        let now = Date().timeIntervalSince1970
        let data: Data? = state.withLock { s in
            var eta = progress.etaSeconds
            if eta == nil, let fraction = progress.fraction, fraction > 0.01, fraction < 1 {
                let elapsed = now - s.stepStartedAt
                eta = (elapsed / fraction - elapsed).rounded()
            }
            s.document.progress = StatusDocument.Progress(
                bytesDone: progress.bytesDone, bytesTotal: progress.bytesTotal, fraction: progress.fraction.map { ($0 * 1000).rounded() / 1000 },
                etaSeconds: eta, message: progress.message)
            guard now - s.lastProgressWrite >= progressInterval || progress.fraction == 1 else { return nil }
            s.lastProgressWrite = now
            s.document.updatedAt = Timestamp.now()
            return try? s.document.encoded()
        }
        if let data {
            do { try AtomicFile.write(data, to: path, mode: mode) } catch {
                logger.warning("could not write progress to the status file", metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }
}
