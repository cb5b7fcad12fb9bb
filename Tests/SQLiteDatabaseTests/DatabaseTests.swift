import Foundation
import SQLiteDatabase
import Testing
import DropboxTestKit

@Suite(.tags(.unit)) struct DatabaseTests {
    func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sqlite-\(UUID().uuidString).db").path
    }

    @Test func roundTripsEveryStorageClass() throws {
        let db = try Database(path: temporaryPath())
        try db.execute("CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT)")
        try db.run(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            [.integer(42), .real(2.5), "héllo 'quoted'", .blob(Data([0, 1, 255])), nil])
        let rows = try db.query("SELECT * FROM t")
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row.int("i") == 42)
        #expect(row.double("r") == 2.5)
        #expect(row.string("s") == "héllo 'quoted'")
        #expect(row["b"] == .blob(Data([0, 1, 255])))
        #expect(row["n"] == .null)
        #expect(row.string("missing") == nil)
    }

    @Test func rollsBackAFailedTransaction() throws {
        let db = try Database(path: temporaryPath())
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES ('a')")
        #expect(throws: SQLiteError.self) {
            try db.transaction {
                try db.run("INSERT INTO t VALUES ('b')")
                try db.run("INSERT INTO t VALUES ('a')")  // unique violation
            }
        }
        let keys = try db.query("SELECT k FROM t ORDER BY k").compactMap { $0.string("k") }
        #expect(keys == ["a"])
    }

    @Test func reportsConstraintAndArgumentErrors() throws {
        let db = try Database(path: temporaryPath())
        try db.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        try db.run("INSERT INTO t VALUES (?)", ["x"])
        do {
            try db.run("INSERT INTO t VALUES (?)", ["x"])
            Issue.record("duplicate key accepted")
        } catch let error as SQLiteError {
            #expect(error.isConstraintViolation)
        }
        #expect(throws: SQLiteError.self) { try db.run("INSERT INTO t VALUES (?)", []) }
    }

    @Test func usesWriteAheadLoggingAndSeesOtherConnectionsWrites() throws {
        let path = temporaryPath()
        let a = try Database(path: path)
        let b = try Database(path: path)
        #expect(try a.query("PRAGMA journal_mode").first?.string("journal_mode") == "wal")
        try a.execute("CREATE TABLE t (v INTEGER)")
        try a.run("INSERT INTO t VALUES (7)")
        #expect(try b.query("SELECT v FROM t").first?.int("v") == 7)
        try b.setUserVersion(3)
        #expect(try a.userVersion() == 3)
    }
}
