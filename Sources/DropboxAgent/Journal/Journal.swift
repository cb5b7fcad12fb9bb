import Foundation
import SQLiteDatabase

/// The agent's durable record of every request it touched: state, step and attempt transitions.
///
/// A local SQLite database in WAL mode. It is this agent's audit trail and index (for `status`, metrics
/// and the idempotency window); the per-job checkpoint in the shared work directory (``JobStore``) is what any
/// agent resumes from, because another host's agent cannot read this file.
final class Journal: Sendable {
    private let db: Database

    init(path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        db = try Database(path: path)
        try migrate()
    }

    private func migrate() throws {
        if try db.userVersion() < 1 {
            try db.transaction {
                try db.execute("""
                    CREATE TABLE IF NOT EXISTS requests (
                        job_id TEXT PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT, mous TEXT, request_id TEXT,
                        state TEXT NOT NULL, step TEXT, attempt INTEGER NOT NULL DEFAULT 0, job_dir TEXT, status_path TEXT,
                        submitted_at TEXT, started_at TEXT, updated_at TEXT NOT NULL, finished_at TEXT,
                        error_code TEXT, error_message TEXT, host TEXT, pid INTEGER);
                    CREATE INDEX IF NOT EXISTS requests_name ON requests(name);
                    CREATE INDEX IF NOT EXISTS requests_sha ON requests(sha256);
                    CREATE TABLE IF NOT EXISTS transitions (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, at TEXT NOT NULL, state TEXT NOT NULL,
                        step TEXT, attempt INTEGER, message TEXT);
                    CREATE INDEX IF NOT EXISTS transitions_job ON transitions(job_id);
                    CREATE TABLE IF NOT EXISTS steps (
                        job_id TEXT NOT NULL, step TEXT NOT NULL, attempt INTEGER NOT NULL, started_at TEXT NOT NULL,
                        finished_at TEXT, outcome TEXT, PRIMARY KEY (job_id, step, attempt));
                    """)
                try db.setUserVersion(1)
            }
        }
    }

    /// One request as the journal knows it.
    struct Entry: Sendable, Equatable {
        var jobId: String
        var name: String
        var sha256: String?
        var mous: String?
        var requestId: String?
        var state: RequestState
        var step: String?
        var attempt: Int
        var jobDirectory: String?
        var statusPath: String?
        var submittedAt: String?
        var startedAt: String?
        var updatedAt: String
        var finishedAt: String?
        var errorCode: String?
        var errorMessage: String?
    }

    /// Records a state (and step) of a job, creating its row the first time, plus a transition row.
    func record(_ entry: Entry, message: String? = nil) throws {
        let me = AgentIdentity.current
        try db.transaction {
            try db.run("""
                INSERT INTO requests (job_id, name, sha256, mous, request_id, state, step, attempt, job_dir, status_path,
                    submitted_at, started_at, updated_at, finished_at, error_code, error_message, host, pid)
                VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)
                ON CONFLICT(job_id) DO UPDATE SET name=excluded.name, sha256=excluded.sha256, mous=excluded.mous,
                    request_id=excluded.request_id, state=excluded.state, step=excluded.step, attempt=excluded.attempt,
                    job_dir=excluded.job_dir, status_path=excluded.status_path, submitted_at=excluded.submitted_at,
                    started_at=excluded.started_at, updated_at=excluded.updated_at, finished_at=excluded.finished_at,
                    error_code=excluded.error_code, error_message=excluded.error_message, host=excluded.host, pid=excluded.pid
                """,
                [
                    .text(entry.jobId), .text(entry.name), .optional(entry.sha256), .optional(entry.mous), .optional(entry.requestId),
                    .text(entry.state.rawValue), .optional(entry.step), .int(entry.attempt), .optional(entry.jobDirectory),
                    .optional(entry.statusPath), .optional(entry.submittedAt), .optional(entry.startedAt), .text(entry.updatedAt),
                    .optional(entry.finishedAt), .optional(entry.errorCode), .optional(entry.errorMessage), .text(me.host), .int(Int(me.pid)),
                ])
            try db.run(
                "INSERT INTO transitions (job_id, at, state, step, attempt, message) VALUES (?,?,?,?,?,?)",
                [.text(entry.jobId), .text(entry.updatedAt), .text(entry.state.rawValue), .optional(entry.step), .int(entry.attempt), .optional(message)])
        }
    }

    /// Records the start of a step attempt.
    func stepStarted(jobId: String, step: String, attempt: Int, at: String) throws {
        try db.run(
            "INSERT OR REPLACE INTO steps (job_id, step, attempt, started_at) VALUES (?,?,?,?)",
            [.text(jobId), .text(step), .int(attempt), .text(at)])
    }

    /// Records how a step attempt ended (`completed`, `failed`, `cancelled`, `interrupted`).
    func stepEnded(jobId: String, step: String, attempt: Int, at: String, outcome: String) throws {
        try db.run(
            "UPDATE steps SET finished_at=?, outcome=? WHERE job_id=? AND step=? AND attempt=?",
            [.text(at), .text(outcome), .text(jobId), .text(step), .int(attempt)])
    }

    /// The steps recorded as completed for a job (any attempt).
    func completedSteps(jobId: String) throws -> [String] {
        try db.query("SELECT DISTINCT step FROM steps WHERE job_id=? AND outcome='completed'", [.text(jobId)]).compactMap { $0.string("step") }
    }

    /// The most recent entries, newest first.
    func entries(limit: Int = 1000) throws -> [Entry] {
        try db.query("SELECT * FROM requests ORDER BY updated_at DESC LIMIT ?", [.int(limit)]).map(Self.entry)
    }

    /// Entries for one request name, newest first.
    func entries(name: String) throws -> [Entry] {
        try db.query("SELECT * FROM requests WHERE name=? ORDER BY updated_at DESC", [.text(name)]).map(Self.entry)
    }

    /// How many times this agent recorded each state for a job (tests and `status` use it).
    func transitions(jobId: String) throws -> [(state: String, step: String?)] {
        try db.query("SELECT state, step FROM transitions WHERE job_id=? ORDER BY seq", [.text(jobId)]).map { ($0.string("state") ?? "", $0.string("step")) }
    }

    private static func entry(_ row: Row) -> Entry {
        Entry(
            jobId: row.string("job_id") ?? "", name: row.string("name") ?? "", sha256: row.string("sha256"), mous: row.string("mous"),
            requestId: row.string("request_id"), state: RequestState(rawValue: row.string("state") ?? "") ?? .failed,
            step: row.string("step"), attempt: row.int("attempt") ?? 0, jobDirectory: row.string("job_dir"),
            statusPath: row.string("status_path"), submittedAt: row.string("submitted_at"), startedAt: row.string("started_at"),
            updatedAt: row.string("updated_at") ?? "", finishedAt: row.string("finished_at"), errorCode: row.string("error_code"),
            errorMessage: row.string("error_message"))
    }
}
