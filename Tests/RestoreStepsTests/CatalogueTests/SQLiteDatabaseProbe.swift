import SQLiteDatabase

/// A second connection to a catalogue file, for checking what was stored.
struct SQLiteDatabaseProbe {
    let db: Database
    init(path: String) throws { db = try Database(path: path) }

    /// The first column of every row, as text.
    func strings(_ sql: String) throws -> [String] {
        try db.query(sql).map { row in row.columns.first.flatMap { row.string($0) } ?? "NULL" }
    }
}
