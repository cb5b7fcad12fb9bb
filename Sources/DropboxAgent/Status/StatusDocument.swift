import FoundationEssentials
import Glibc
import RestoreSteps

/// The request states of the contract.
enum RequestState: String, Codable, Sendable, CaseIterable {
    case waiting, queued, running, succeeded, failed, rejected, cancelled

    /// `succeeded`, `failed`, `rejected` and `cancelled` never change again.
    var isTerminal: Bool { [.succeeded, .failed, .rejected, .cancelled].contains(self) }
}

/// `NAME.status.json` (schema `dropbox-agent/status/v1`), exactly the contract's fields plus a few documented
/// additions (`requestFile`, `linkedTo`, `warnings`, `casa`, `workingArea`, `logs`, `sequence`).
struct StatusDocument: Codable, Sendable, Equatable {
    static let schemaID = "dropbox-agent/status/v1"

    struct Step: Codable, Sendable, Equatable {
        var number: Int
        var name: String
        init(_ step: StepName) {
            number = step.number
            name = step.rawValue
        }
    }
    struct Progress: Codable, Sendable, Equatable {
        var bytesDone: Int64?
        var bytesTotal: Int64?
        var fraction: Double?
        var etaSeconds: Double?
        var message: String?
    }
    struct ErrorInfo: Codable, Sendable, Equatable {
        var code: String
        var message: String
        var hint: String?
    }
    struct Result: Codable, Sendable, Equatable {
        var deliveryPath: String
        var url: String?
        var measurementSets: [String]
        var sizeBytes: Int64
        /// When the agent removes the delivery (`delivery.retentionDays`); absent: kept for ever.
        var expiresAt: String?
        /// One line that downloads every delivered file.
        var downloadCommand: String?
        /// Set once the delivery has been removed: when (the rest of `result` still says what was delivered).
        var expiredAt: String?
        /// What was delivered, top-level names (measurement sets, derived products, archives).
        var products: [String]?
        /// Quick-look plots, relative to `url`.
        var plots: [String]?
    }
    struct Notification: Codable, Sendable, Equatable {
        var to: String
        var state: String  // sent | queued (outbox) | failed | pending | retrying
        /// `requester` (the request's addresses) or `operator` (`notifications.operators`, with internal details).
        var role: String? = nil
        var error: String?
        /// Where the message was written when there is no SMTP server (outbox `.eml`).
        var outboxFile: String?
        /// Sending attempts so far (the mail queue).
        var attempts: Int?
        /// When a `retrying` recipient is tried next.
        var nextAttemptAt: String?
    }
    struct HistoryEntry: Codable, Sendable, Equatable {
        var at: String
        var state: RequestState
        var step: Step?
        var message: String?
    }
    struct Agent: Codable, Sendable, Equatable {
        var host: String
        var pid: Int32
    }
    /// The CASA that restores (or restored) and the one that made the tables (the manifest's `casaversion`).
    struct CASA: Codable, Sendable, Equatable {
        var version: String
        /// Absent until the manifest has been read, or when it does not say.
        var manifestVersion: String?
        var installation: String
    }
    struct Link: Codable, Sendable, Equatable {
        /// The request this one duplicates.
        var request: String
        var statusFile: String
    }

    var schema = StatusDocument.schemaID
    var request: String
    var requestId: String?
    var mous: String?
    var sha256: String?
    var state: RequestState
    var step: Step?
    var progress: Progress?
    var attempt: Int?
    var agent: Agent?
    var submittedAt: String?
    var startedAt: String?
    var updatedAt: String
    var finishedAt: String?
    var error: ErrorInfo?
    var result: Result?
    var notifications: [Notification]?
    var history: [HistoryEntry] = []
    /// Where the request file is kept now (claimed, rejected or finished requests are moved, never deleted).
    var requestFile: String?
    /// For a re-submission of identical content: the request whose result this one shares.
    var linkedTo: Link?
    /// Things worth knowing that did not stop the request (ignored event fields, mail trouble).
    var warnings: [String]?
    /// Which CASA restores the data and which one made the tables, once chosen (step 1; step 3 adds the
    /// manifest's version for the catalogue source). A warning in ``warnings`` says when they differ.
    var casa: CASA?
    /// Where CASA runs or ran (step 5): backend, the scheduler's job ids, the newest job's state.
    var execution: ExecutionStatus?
    /// The request's working area (kept on failure for inspection).
    var workingArea: String?
    /// The request's log directory (CASA output, casa logs).
    var logs: String?
    /// Counts the writes of this file: every write carries a higher number than the one before, so a reader can
    /// tell a newer document from an older one (absent in files written before it existed).
    var sequence: Int?

    init(request: String, state: RequestState, at now: String = Timestamp.now()) {
        self.request = request
        self.state = state
        self.updatedAt = now
    }

    /// Moves to `state` (and `step`), appending to the history when either changed.
    mutating func transition(
        to state: RequestState, step: StepName? = nil, message: String? = nil, at now: String = Timestamp.now()
    ) {
        let newStep = step.map(Step.init)
        let changed = state != self.state || newStep != self.step || history.isEmpty
        if newStep != self.step { progress = nil }  // a new step starts without the last one's progress
        self.state = state
        self.step = state == .running ? newStep : (state.isTerminal ? self.step : nil)
        if state != .running { progress = nil }
        updatedAt = now
        if state.isTerminal && finishedAt == nil { finishedAt = now }
        if changed { history.append(HistoryEntry(at: now, state: state, step: newStep, message: message)) }
    }

    /// Records the CASA choice and keeps exactly one version warning (the latest) among the other warnings.
    mutating func record(casa: CASA?, warning: String?) {
        guard let casa else { return }
        self.casa = casa
        var others = (warnings ?? []).filter { !$0.hasPrefix(StatusDocument.casaWarningPrefix) }
        if let warning { others.append(warning) }
        warnings = others.isEmpty ? nil : others
    }

    /// How every CASA version warning starts (``ChosenCASA/warning``).
    static let casaWarningPrefix = "The calibration tables were made with CASA"

    /// Gives the document the next sequence number; call once before each write.
    mutating func advanceSequence() { sequence = (sequence ?? 0) + 1 }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(self)
        data.append(0x0A)
        return data
    }

    static func decode(_ data: Data) throws -> StatusDocument {
        try JSONDecoder().decode(StatusDocument.self, from: data)
    }
}
