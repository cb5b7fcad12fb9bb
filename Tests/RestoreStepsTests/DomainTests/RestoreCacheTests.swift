import Foundation
import RestoreSteps
import DropboxTestKit
import Testing

@Suite("Restore cache", .tags(.unit))
struct RestoreCacheTests {
    private func makeRestore(_ root: String, bytes: Int) throws -> String {
        let products = root + "/products"
        try FileManager.default.createDirectory(atPath: products + "/a.ms/ANTENNA", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(
            atPath: products + "/a.ms.flagversions", withIntermediateDirectories: true)
        try Data(repeating: 7, count: bytes).write(to: URL(fileURLWithPath: products + "/a.ms/table.f0"))
        try Data("lock".utf8).write(to: URL(fileURLWithPath: products + "/a.ms/table.lock"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: products + "/a.ms.flagversions/FLAG_VERSION_LIST"))
        return products
    }

    private func inode(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : 0
    }

    @Test("stored as hard links (table.lock copied), materialised as hard links, evicted LRU but never while in use")
    func lifecycle() throws {
        let root = NSTemporaryDirectory() + "/restore-cache-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = RestoreCache(root: root + "/cache", maxBytes: 150_000)
        let keyA = String(repeating: "a", count: 64)
        let keyB = String(repeating: "b", count: 64)
        let keyC = String(repeating: "c", count: 64)
        let productsA = try makeRestore(root + "/ra", bytes: 100_000)
        try cache.store(
            key: keyA, mous: "uid://A001/X1/X1", sourceRequest: "r1", measurementSets: ["a.ms"], products: productsA,
            logs: [], plots: nil)
        let entryA = try #require(cache.lookup(keyA))
        #expect(entryA.bytes >= 100_000)
        #expect(inode(root + "/cache/\(keyA)/products/a.ms/table.f0") == inode(productsA + "/a.ms/table.f0"))
        #expect(inode(root + "/cache/\(keyA)/products/a.ms/table.lock") != inode(productsA + "/a.ms/table.lock"))

        // A job uses A: linked into its working area, and A cannot be evicted while the job directory exists.
        let job = root + "/jobs/job-1"
        try FileManager.default.createDirectory(atPath: job, withIntermediateDirectories: true)
        try cache.materialize(
            entryA, products: root + "/w/products", logs: root + "/w/working", plots: root + "/w/plots",
            jobDirectory: job)
        #expect(inode(root + "/w/products/a.ms/table.f0") == inode(productsA + "/a.ms/table.f0"))
        #expect(FileManager.default.fileExists(atPath: root + "/w/products/a.ms.flagversions/FLAG_VERSION_LIST"))
        #expect(cache.inUse(keyA))

        // B pushes the cache over its bound: A is in use, so it stays (B, the one to keep, too).
        try cache.store(
            key: keyB, mous: "uid://A001/X1/X2", sourceRequest: "r2", measurementSets: ["a.ms"],
            products: try makeRestore(root + "/rb", bytes: 100_000), logs: [], plots: nil)
        #expect(cache.lookup(keyA) != nil && cache.lookup(keyB) != nil)

        // The job ends: A is the least recently used and goes when C arrives.
        try FileManager.default.removeItem(atPath: job)
        #expect(!cache.inUse(keyA))
        try cache.store(
            key: keyC, mous: "uid://A001/X1/X3", sourceRequest: "r3", measurementSets: ["a.ms"],
            products: try makeRestore(root + "/rc", bytes: 10_000), logs: [], plots: nil)
        #expect(cache.lookup(keyA) == nil)
        #expect(cache.lookup(keyB) != nil && cache.lookup(keyC) != nil)
        // What a delivery linked earlier is untouched by eviction.
        #expect(FileManager.default.fileExists(atPath: root + "/w/products/a.ms/table.f0"))
        // Keys are hex digests; anything else is never looked up.
        #expect(cache.lookup("../ra") == nil)
    }

    @Test("staging left by a killed writer is swept; a live writer's never; the next keep of the job starts clean")
    func stagingSweep() throws {
        let root = NSTemporaryDirectory() + "/restore-cache-staging-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let fm = FileManager.default
        let cache = RestoreCache(root: root + "/cache", maxBytes: 1_000_000)
        let key = String(repeating: "d", count: 64)
        let liveJob = root + "/jobs/job-live"
        let deadJob = root + "/jobs/job-dead"
        let endedJob = root + "/jobs/job-ended"
        for job in [liveJob, deadJob] { try fm.createDirectory(atPath: job, withIntermediateDirectories: true) }
        func stage(_ job: String, pid: Int32) throws -> String {
            let dir = root + "/cache/.staging-\(key)-" + (job as NSString).lastPathComponent
            try fm.createDirectory(atPath: dir + "/products/a.ms", withIntermediateDirectories: true)
            var owner = RestoreCache.StagingOwner.current(jobDirectory: job)
            owner.pid = pid
            try JSONEncoder().encode(owner).write(to: URL(fileURLWithPath: dir + "/owner.json"))
            return dir
        }
        let live = try stage(liveJob, pid: 101)
        let dead = try stage(deadJob, pid: 202)
        let ended = try stage(endedJob, pid: 101)
        let unowned = root + "/cache/.staging-\(key)-pid77"
        try fm.createDirectory(atPath: unowned, withIntermediateDirectories: true)
        let alive: (RestoreCache.StagingOwner) -> Bool = { $0.pid == 101 }

        // Within the orphan age, a staging without an owner record may be one being created: kept.
        var removed = cache.sweepStaging(isAlive: alive, orphanAge: 600, now: Date().timeIntervalSince1970)
        #expect(Set(removed) == Set([dead, ended].map { ($0 as NSString).lastPathComponent }))
        #expect(fm.fileExists(atPath: live + "/products/a.ms") && fm.fileExists(atPath: unowned))
        removed = cache.sweepStaging(isAlive: alive, orphanAge: 600, now: Date().timeIntervalSince1970 + 3600)
        #expect(removed == [(unowned as NSString).lastPathComponent])
        #expect(fm.fileExists(atPath: live + "/products/a.ms"), "a live writer's staging is never removed")

        // The job whose writer died keeps its restore again: its own staging name, started clean, renamed into place;
        // the entry carries no owner record.
        try fm.createDirectory(atPath: deadJob, withIntermediateDirectories: true)
        _ = try stage(deadJob, pid: 202)
        let products = root + "/w/products"
        try fm.createDirectory(atPath: products + "/a.ms", withIntermediateDirectories: true)
        try Data(repeating: 1, count: 100).write(to: URL(fileURLWithPath: products + "/a.ms/table.f0"))
        nonisolated(unsafe) var sawStaging = false
        try cache.store(
            key: key, mous: "uid://A001/X1/X1", sourceRequest: "r", measurementSets: ["a.ms"], products: products,
            logs: [], plots: nil, jobDirectory: deadJob,
            staged: { sawStaging = FileManager.default.fileExists(atPath: root + "/cache/.staging-\(key)-job-dead") })
        #expect(sawStaging)
        #expect(cache.lookup(key) != nil)
        #expect(!fm.fileExists(atPath: root + "/cache/.staging-\(key)-job-dead"))
        #expect(!fm.fileExists(atPath: root + "/cache/\(key)/owner.json"))
        #expect(fm.fileExists(atPath: live), "still there: its writer lives")
    }
}
