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
}
