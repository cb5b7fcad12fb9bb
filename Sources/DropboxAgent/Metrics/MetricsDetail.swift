import FoundationEssentials
import Glibc
import RestoreSteps
import Synchronization

/// The metrics beyond plain counters: step and request durations, outcomes by error code, the last success.
///
/// The error-code label is bounded: a code must look like one of ours (letters only, at most 40) and at most
/// ``maxCodes`` distinct codes are kept; anything else is counted as `other`, so a bug can never explode the
/// number of series.
final class MetricsDetail: Sendable {
    /// Step durations range from milliseconds (`ppr`) to days (`casa`).
    static let stepBounds: [Double] = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 3 * 3600, 12 * 3600, 48 * 3600]
    /// Whole requests, claim to end.
    static let requestBounds: [Double] = [1, 10, 60, 300, 900, 3600, 3 * 3600, 12 * 3600, 48 * 3600]
    static let maxCodes = 50

    struct Outcome: Hashable, Sendable {
        var state: String
        var code: String
    }

    struct State: Sendable {
        var steps: [String: Histogram] = [:]
        var requests: [String: Histogram] = [:]
        var outcomes: [Outcome: Int] = [:]
        var lastSuccess: Double = 0
        var stepStarts: [String: Double] = [:]
    }

    private let state = Mutex(State())

    var snapshot: State { state.withLock { $0 } }

    /// A step of a job starts (the job id keys the start time).
    func stepStarted(jobId: String, step: StepName, at time: Double = Date().timeIntervalSince1970) {
        state.withLock { $0.stepStarts[jobId + "/" + step.rawValue] = time }
    }

    /// A step of a job completed: its duration goes into `dropbox_agent_step_duration_seconds{step}`.
    func stepCompleted(jobId: String, step: StepName, at time: Double = Date().timeIntervalSince1970) {
        state.withLock { s in
            guard let start = s.stepStarts.removeValue(forKey: jobId + "/" + step.rawValue) else { return }
            s.steps[step.rawValue, default: Histogram(bucketCount: Self.stepBounds.count)].observe(
                max(0, time - start), bounds: Self.stepBounds)
        }
    }

    /// A request ended (`succeeded`, `failed`, `cancelled`, `rejected`), with its error code if any.
    func finished(
        jobId: String?, state final: RequestState, code: String?, durationSeconds: Double?,
        at time: Double = Date().timeIntervalSince1970
    ) {
        state.withLock { s in
            if let jobId { s.stepStarts = s.stepStarts.filter { !$0.key.hasPrefix(jobId + "/") } }
            var label = code ?? ""
            let known = s.outcomes.keys.contains { $0.code == label }
            let distinct = Set(s.outcomes.keys.map(\.code)).count
            if !label.isEmpty, !Self.looksLikeCode(label) || (!known && distinct >= Self.maxCodes) { label = "other" }
            s.outcomes[Outcome(state: final.rawValue, code: label), default: 0] += 1
            if let durationSeconds {
                s.requests[final.rawValue, default: Histogram(bucketCount: Self.requestBounds.count)].observe(
                    max(0, durationSeconds), bounds: Self.requestBounds)
            }
            if final == .succeeded { s.lastSuccess = max(s.lastSuccess, time) }
        }
    }

    static func looksLikeCode(_ code: String) -> Bool {
        code.count <= 40 && code.unicodeScalars.allSatisfy { $0.isASCII && $0.properties.isAlphabetic }
    }
}
