import Delivery
import FoundationEssentials
import Glibc
import SQLiteDatabase

/// The agent's durable record of every request it touched: state, step and attempt transitions.
///
/// A local SQLite database in WAL mode, written and never read by the agent: it is the audit trail for
/// operators (`sqlite3 <data>/journal.sqlite`) and tests. What the agent decides from lives elsewhere: the
/// per-job checkpoint and lease in the shared work directory (``JobStore``), which any agent resumes from (another
/// host's agent cannot read this file), and the idempotency index. Its rows are projections of the
/// ``StatusDocument`` the agent publishes at the same moment, so the two cannot disagree.
final class Journal: Sendable {
    private let db: Database

    init(path: String) throws {
        try FileManager.default.createDirectory(
            atPath: PathString.deletingLastComponent(path), withIntermediateDirectories: true)
        db = try Database(path: path)
        try migrate()
    }

    /// Returns the connection's page cache (it grows to 2 MiB as the journal grows; the agent never reads the
    /// journal back): when the agent is idle again after a burst.
    func releaseMemory() { db.releaseMemory() }

    private func migrate() throws {
        if try db.userVersion() < 1 {
            try db.transaction {
                try db.execute(
                    """
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

    /// Records the state (and step) of job `jobId` as `doc` shows it, creating its row the first time, plus a
    /// transition row.
    func record(
        _ doc: StatusDocument, jobId: String, attempt: Int, step: String? = nil, jobDirectory: String? = nil,
        statusPath: String, message: String? = nil
    ) throws {
        let me = AgentIdentity.current
        try db.transaction {
            try db.run(
                """
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
                    .text(jobId), .text(doc.request), .optional(doc.sha256), .optional(doc.mous),
                    .optional(doc.requestId),
                    .text(doc.state.rawValue), .optional(step ?? doc.step?.name), .int(attempt),
                    .optional(jobDirectory),
                    .text(statusPath), .optional(doc.submittedAt), .optional(doc.startedAt), .text(doc.updatedAt),
                    .optional(doc.finishedAt), .optional(doc.error?.code), .optional(doc.error?.message),
                    .text(me.host),
                    .int(Int(me.pid)),
                ])
            try db.run(
                "INSERT INTO transitions (job_id, at, state, step, attempt, message) VALUES (?,?,?,?,?,?)",
                [
                    .text(jobId), .text(doc.updatedAt), .text(doc.state.rawValue), .optional(step ?? doc.step?.name),
                    .int(attempt), .optional(message),
                ])
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
}
