internal import CSQLite
internal import FoundationEssentials
internal import Glibc

/// A connection to one SQLite database file.
///
/// A thin, safe wrapper over libsqlite3 in the style of GRDB: statements are prepared and finalized inside
/// the wrapper, values cross the boundary as ``SQLiteValue``, and every failing call becomes a
/// ``SQLiteError`` carrying SQLite's result code and message. All access is serialised by an internal lock,
/// so one `Database` may be shared between tasks; keep calls short (they block the calling thread).
public final class Database: @unchecked Sendable {  // unchecked: every use of `handle` holds `lock`.
    private let handle: OpaquePointer
    private let lock = RecursiveLock()
    /// The path the database was opened at.
    public let path: String

    /// Opens (creating if needed) the database at `path`.
    ///
    /// - Parameters:
    ///   - path: file path, or `":memory:"`.
    ///   - busyTimeout: how long a call waits for another connection's lock before failing with `SQLITE_BUSY`.
    ///   - walMode: switch the journal to write-ahead logging (readers never block the writer).
    /// - Throws: ``SQLiteError`` when the file cannot be opened.
    /// The corresponding C function is `sqlite3_open_v2`.
    public init(path: String, busyTimeout: Duration = .seconds(10), walMode: Bool = true) throws {
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: message, sql: nil, path: path)
        }
        self.handle = db
        self.path = path
        let ms = Int32(
            busyTimeout.components.seconds * 1000 + busyTimeout.components.attoseconds / 1_000_000_000_000_000)
        sqlite3_busy_timeout(db, ms)
        sqlite3_extended_result_codes(db, 1)
        if walMode && path != ":memory:" {
            try execute("PRAGMA journal_mode=WAL")
            try execute("PRAGMA synchronous=FULL")
        }
        try execute("PRAGMA foreign_keys=ON")
    }

    deinit { sqlite3_close_v2(handle) }

    /// Runs one or more SQL statements that return no rows (DDL, pragmas, scripts).
    /// The corresponding C function is `sqlite3_exec`.
    public func execute(_ sql: String) throws {
        try locked {
            var errorMessage: UnsafeMutablePointer<CChar>?
            let rc = sqlite3_exec(handle, sql, nil, nil, &errorMessage)
            if rc != SQLITE_OK {
                let message = errorMessage.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
                sqlite3_free(errorMessage)
                throw SQLiteError(code: rc, message: message, sql: sql, path: path)
            }
        }
    }

    /// Runs one statement with bound parameters (`?` placeholders) and returns the number of changed rows.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLiteValue] = []) throws -> Int {
        try locked {
            try withStatement(sql, arguments) { statement in
                while try step(statement, sql: sql) {}
                return Int(sqlite3_changes(handle))
            }
        }
    }

    /// Runs a query and returns every row.
    public func query(_ sql: String, _ arguments: [SQLiteValue] = []) throws -> [Row] {
        try locked {
            try withStatement(sql, arguments) { statement in
                var rows: [Row] = []
                let count = sqlite3_column_count(statement)
                let names = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
                while try step(statement, sql: sql) {
                    var values: [SQLiteValue] = []
                    values.reserveCapacity(Int(count))
                    for i in 0..<count { values.append(column(statement, i)) }
                    rows.append(Row(columns: names, values: values))
                }
                return rows
            }
        }
    }

    /// The row id of the most recent successful INSERT on this connection.
    public var lastInsertRowID: Int64 { locked { sqlite3_last_insert_rowid(handle) } }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws.
    ///
    /// `IMMEDIATE` takes the write lock at the start, so two processes updating the same rows serialise
    /// instead of failing half-way with `SQLITE_BUSY` on upgrade.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try locked {
            try execute("BEGIN IMMEDIATE")
            do {
                let value = try body()
                try execute("COMMIT")
                return value
            } catch {
                try? execute("ROLLBACK")
                throw error
            }
        }
    }

    /// The schema version kept in `PRAGMA user_version`, for simple migrations.
    public func userVersion() throws -> Int {
        try query("PRAGMA user_version").first?.int("user_version") ?? 0
    }

    /// Sets `PRAGMA user_version`.
    public func setUserVersion(_ version: Int) throws { try execute("PRAGMA user_version=\(version)") }

    /// Frees the memory the connection holds that it can do without (its page cache, up to `cache_size`, 2 MiB by
    /// default): for a long-lived connection when it goes idle. The next statements read the pages they need again.
    /// The corresponding C function is `sqlite3_db_release_memory`.
    public func releaseMemory() {
        locked { _ = sqlite3_db_release_memory(handle) }
    }

    // MARK: - Internals

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private func withStatement<T>(
        _ sql: String, _ arguments: [SQLiteValue], _ body: (OpaquePointer) throws -> T
    ) throws -> T {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v2(handle, sql, -1, &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql, path: path)
        }
        defer { sqlite3_finalize(statement) }
        let expected = Int(sqlite3_bind_parameter_count(statement))
        guard expected == arguments.count else {
            throw SQLiteError(
                code: SQLITE_RANGE, message: "statement takes \(expected) arguments, \(arguments.count) given",
                sql: sql, path: path)
        }
        for (offset, value) in arguments.enumerated() {
            let index = Int32(offset + 1)
            let bindResult: Int32
            switch value {
            case .null: bindResult = sqlite3_bind_null(statement, index)
            case .integer(let v): bindResult = sqlite3_bind_int64(statement, index, v)
            case .real(let v): bindResult = sqlite3_bind_double(statement, index, v)
            case .text(let v): bindResult = sqlite3_bind_text(statement, index, v, -1, csqlite_transient())
            case .blob(let v):
                bindResult = v.withUnsafeBytes { bytes in
                    sqlite3_bind_blob(statement, index, bytes.baseAddress, Int32(bytes.count), csqlite_transient())
                }
            }
            guard bindResult == SQLITE_OK else {
                throw SQLiteError(
                    code: bindResult, message: String(cString: sqlite3_errmsg(handle)), sql: sql, path: path)
            }
        }
        return try body(statement)
    }

    /// Steps once: `true` while a row is available, `false` when done.
    private func step(_ statement: OpaquePointer, sql: String) throws -> Bool {
        let rc = sqlite3_step(statement)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(handle)), sql: sql, path: path)
        }
    }

    private func column(_ statement: OpaquePointer, _ i: Int32) -> SQLiteValue {
        switch sqlite3_column_type(statement, i) {
        case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, i))
        case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, i))
        case SQLITE_TEXT: return .text(String(cString: sqlite3_column_text(statement, i)))
        case SQLITE_BLOB:
            let count = Int(sqlite3_column_bytes(statement, i))
            guard count > 0, let pointer = sqlite3_column_blob(statement, i) else { return .blob(Data()) }
            return .blob(Data(bytes: pointer, count: count))
        default: return .null
        }
    }
}

/// A recursive pthread mutex: `transaction` calls `execute` while holding the lock.
private final class RecursiveLock: @unchecked Sendable {  // unchecked: the mutex is only used through pthread calls.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        var attributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&attributes)
        pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
        pthread_mutex_init(mutex, &attributes)
        pthread_mutexattr_destroy(&attributes)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
}
