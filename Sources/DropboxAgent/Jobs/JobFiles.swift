import FoundationEssentials
import Glibc
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

/// The lease of one attempt of a claimed request (`attempts/<n>.json`): who runs it, which attempt, and when it
/// last said so. See ``JobStore`` ("Leases and fencing") for the protocol.
struct Lease: Codable, Sendable, Equatable {
    var owner: AgentIdentity
    /// The attempt's number n, the fencing token: held while `attempts/<n+1>.json` does not exist.
    var attempt: Int
    /// Seconds since 1970 of the last renewal.
    var heartbeat: Double
    var leaseSeconds: Double
    /// Set on a clean stop: anyone may resume the job at once, without waiting for expiry.
    var released: Bool = false
    /// Starts counted against `agent.maxAttempts` so far, this one included: a takeover after a crash counts, a
    /// resume after a clean stop or a transient-failure wait does not. nil (attempt 1, or an earlier version's
    /// lease): ``attempt``.
    var counted: Int? = nil
    /// Set on the lease by which the holder of attempt `concludes` claimed the right to conclude the job.
    var concludes: Int? = nil

    /// The attempt number shown in the status file and checked against `agent.maxAttempts`.
    var countedAttempts: Int { counted ?? attempt }

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
