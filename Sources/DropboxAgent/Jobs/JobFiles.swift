import Foundation
import RestoreSteps

/// The durable checkpoint of one claimed request (`job.json` in its job directory): what any agent needs to
/// resume it, including an agent on another host after a lease takeover.
struct JobCheckpoint: Codable, Sendable, Equatable {
    var jobId: String
    var name: String
    /// The spool the request was dropped in (its status file lives there).
    var spoolDirectory: String
    var sha256: String
    var submittedAt: String
    var startedAt: String?
    /// Steps finished for good; a restart resumes at the first step not in this list.
    var completedSteps: [StepName] = []
    /// The request's working area (SCIPIPE_ROOTDIR of the restore).
    var restoreRoot: String
    /// Set once notifications were sent, so a crash after sending does not send them twice.
    var notified: Bool = false
    /// When the first transient failure (archive down, …) happened, seconds since 1970; retries stop after
    /// `archive.retryHorizonSeconds` from it.
    var transientSince: Double?
    /// Transient failures so far (the backoff doubles with each).
    var transientRetries: Int?
    /// No agent resumes the job before this time (seconds since 1970).
    var retryAt: Double?
}

/// A lease on a claimed request (`lease.json`): who runs it, which attempt, and when it last said so.
struct Lease: Codable, Sendable, Equatable {
    var owner: AgentIdentity
    var attempt: Int
    /// Seconds since 1970 of the last renewal.
    var heartbeat: Double
    var leaseSeconds: Double
    /// Set on a clean stop: anyone may resume the job at once, without waiting for expiry.
    var released: Bool = false

    func isExpired(now: Double = Date().timeIntervalSince1970) -> Bool { now - heartbeat > leaseSeconds }

    /// Whether another agent may take the job over now: released, expired, or held by a dead process of this host.
    func isAvailable(now: Double = Date().timeIntervalSince1970) -> Bool {
        released || isExpired(now: now) || !owner.isAliveOnThisHost
    }
}

extension FileManager {
    func readJSON<T: Decodable>(_ type: T.Type, at path: String) -> T? {
        guard let data = contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(T.self, from: data)
    }
}

func encodeJSON<T: Encodable>(_ value: T) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
}
