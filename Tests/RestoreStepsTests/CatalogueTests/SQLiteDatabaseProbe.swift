import SQLiteDatabase

/// A second connection to a catalogue file, for checking what was stored.
struct SQLiteDatabaseProbe {
    let db: Database
    init(path: String) throws { db = try Database(path: path) }

    /// The first column of every row, as text.
    func strings(_ sql: String) throws -> [String] {
        try db.query(sql).map { row in row.columns.first.flatMap { row.string($0) } ?? "NULL" }
    }

    /// Runs one statement (a site changing its own catalogue behind the agent's back).
    func execute(_ sql: String) throws { _ = try db.run(sql) }
}
