import FoundationEssentials
import Glibc
import RestoreSteps

/// `agent`: concurrency, leases, journal, working areas.
struct AgentSettings: Codable, Sendable {
    /// Claimed requests and leases; must be on the spool's filesystem (default `<spool>/.dropbox-agent`).
    var workDirectory: String?
    /// Per-request working areas (default `<data>/restores`).
    var restoreDirectory: String?
    /// The SQLite journal (default `<data>/journal.sqlite`); keep it on a local filesystem.
    var journal: String?
    /// How many restores run at once; the rest stay queued in the spool, first come first served.
    var maxConcurrentRestores: Int = 1
    /// At most this many restores of one dropper (the request file's owner) at once, so one busy dropper cannot
    /// take every slot; 0 means no per-dropper bound.
    var maxConcurrentPerDropper: Int = 0
    /// A claimed request whose lease is not renewed for this long is taken over by another agent.
    var leaseSeconds: Double = 300
    /// How many times a request is started (first run plus takeovers) before it fails for good.
    var maxAttempts: Int = 3
    /// The same request dropped again within this window of a live or succeeded one links to it.
    var resubmitWindowSeconds: Double = 86400
    /// On SIGTERM, how long the running step may take to finish before it is interrupted.
    var shutdownGraceSeconds: Double = 20
    /// Finished job records and status files older than this many days are removed (0 keeps them forever).
    var retentionDays: Double = 7
    /// Free space needed in the restore directory before the raw fetch, as a multiple of the raw ASDM bytes
    /// (measured on the fixture; 0 disables the check).
    var diskSpaceFactor: Double = DiskSpaceCheck.defaultFactor
    /// Seconds between two sweeps of leftovers (``Sweeper``) while the agent runs; the first is at start.
    var sweepIntervalSeconds: Double = AgentSettings.defaultSweepIntervalSeconds

    /// `sweepIntervalSeconds`' default: 10 minutes, the age at which an orphan temporary file is swept.
    static let defaultSweepIntervalSeconds: Double = 600
    /// `sweepIntervalSeconds`' bounds: at least 10 s (a sweep lists every job folder and working area, so not
    /// more often), at most a day (a `kill -9`'s working area of hundreds of GB must not wait longer).
    static let sweepIntervalRange: ClosedRange<Double> = 10...86400

    private static func require(_ ok: Bool, _ key: String, _ message: String) throws {
        guard ok else { throw ConfigurationError(path: "$.agent.\(key)", message: message) }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case workDirectory, restoreDirectory, journal, maxConcurrentRestores, maxConcurrentPerDropper, leaseSeconds,
            maxAttempts
        case resubmitWindowSeconds, shutdownGraceSeconds, retentionDays, diskSpaceFactor, sweepIntervalSeconds
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AgentSettings()
        workDirectory = try c.decodeIfPresent(String.self, forKey: .workDirectory)
        restoreDirectory = try c.decodeIfPresent(String.self, forKey: .restoreDirectory)
        journal = try c.decodeIfPresent(String.self, forKey: .journal)
        maxConcurrentRestores = try c.value(.maxConcurrentRestores, default: d.maxConcurrentRestores)
        maxConcurrentPerDropper = try c.value(.maxConcurrentPerDropper, default: d.maxConcurrentPerDropper)
        leaseSeconds = try c.value(.leaseSeconds, default: d.leaseSeconds)
        maxAttempts = try c.value(.maxAttempts, default: d.maxAttempts)
        resubmitWindowSeconds = try c.value(.resubmitWindowSeconds, default: d.resubmitWindowSeconds)
        shutdownGraceSeconds = try c.value(.shutdownGraceSeconds, default: d.shutdownGraceSeconds)
        retentionDays = try c.value(.retentionDays, default: d.retentionDays)
        diskSpaceFactor = try c.value(.diskSpaceFactor, default: d.diskSpaceFactor)
        if diskSpaceFactor < 0 || !diskSpaceFactor.isFinite {
            throw ConfigurationError(
                path: "$.agent.diskSpaceFactor",
                message: "must be a number ≥ 0 (0 disables the check), not \(diskSpaceFactor)")
        }
        // Values that would leave every request stuck (no slot), failing at once (no attempt), taken over at once
        // (run twice), or make no sense, are refused here rather than discovered in production.
        try Self.require(
            maxConcurrentRestores >= 1, "maxConcurrentRestores",
            "must be at least 1 (0 would leave every request queued forever), not \(maxConcurrentRestores)")
        try Self.require(
            maxConcurrentPerDropper >= 0, "maxConcurrentPerDropper",
            "must be ≥ 0 (0: no per-dropper bound), not \(maxConcurrentPerDropper)")
        try Self.require(
            leaseSeconds.isFinite && leaseSeconds >= 1, "leaseSeconds",
            "must be a number of seconds ≥ 1 (a shorter lease expires before it is renewed: requests would be taken over while they run), not \(leaseSeconds)"
        )
        try Self.require(maxAttempts >= 1, "maxAttempts", "must be at least 1, not \(maxAttempts)")
        for (key, value) in [
            ("resubmitWindowSeconds", resubmitWindowSeconds), ("shutdownGraceSeconds", shutdownGraceSeconds),
            ("retentionDays", retentionDays),
        ] {
            try Self.require(value.isFinite && value >= 0, key, "must be a number ≥ 0, not \(value)")
        }
        sweepIntervalSeconds = try c.value(.sweepIntervalSeconds, default: d.sweepIntervalSeconds)
        guard Self.sweepIntervalRange.contains(sweepIntervalSeconds) else {
            throw ConfigurationError(
                path: "$.agent.sweepIntervalSeconds",
                message:
                    "must be a number of seconds from \(Int(Self.sweepIntervalRange.lowerBound)) to \(Int(Self.sweepIntervalRange.upperBound)) (a day), not \(sweepIntervalSeconds)"
            )
        }
    }
}
