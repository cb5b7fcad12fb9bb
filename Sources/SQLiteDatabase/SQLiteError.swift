/// A failed SQLite call: the (extended) result code, SQLite's message, and the statement.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    /// The SQLite result code (`SQLITE_BUSY` = 5, `SQLITE_CONSTRAINT` = 19, extended codes included).
    public var code: Int32
    /// SQLite's own explanation (`sqlite3_errmsg`).
    public var message: String
    /// The statement that failed, when there was one.
    public var sql: String?
    /// The database file.
    public var path: String

    /// The primary result code (low byte of the extended code).
    public var primaryCode: Int32 { code & 0xff }
    /// `true` for `SQLITE_BUSY`/`SQLITE_LOCKED`: another connection holds the lock; retrying may work.
    public var isBusy: Bool { primaryCode == 5 || primaryCode == 6 }
    /// `true` for constraint violations (unique keys, foreign keys, NOT NULL).
    public var isConstraintViolation: Bool { primaryCode == 19 }

    public var description: String {
        "SQLite error \(code) in \(path): \(message)" + (sql.map { " (statement: \($0.prefix(200)))" } ?? "")
    }
}
