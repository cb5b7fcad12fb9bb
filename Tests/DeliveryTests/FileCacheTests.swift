import Delivery
import Foundation
import Testing
import DropboxTestKit

@Suite("FileCache", .serialized, .tags(.integration), .selected(.integration))
struct FileCacheTests {
    private func expected(_ name: String, _ data: Data) -> ExpectedFile {
        var crc = Checksum(.crc32)
        crc.update(data)
        return ExpectedFile(fileId: name, size: Int64(data.count), checksum: crc.decimalString, checksumVariant: .crc32)
    }

    @Test("a hit fetches 0 bytes from the store and survives a restart")
    func hitFetchesNothing() async throws {
        let dir = try TemporaryDirectory("cache")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let out = try dir.sub("out")
        let data = try writeRandomFile(storeDir + "/a.tgz", size: 300_000)
        let service = try TestService.faultStore(store: storeDir, runDirectory: try dir.sub("run"))
        defer { service.stop() }
        let store = HTTPArchiveStore(baseURL: service.baseURL)
        let file = expected("a.tgz", data)

        let cache = FileCache(root: try dir.sub("cache"), maxBytes: 10_000_000)
        let first = try await cache.retrieve(file, from: store, to: out + "/first.tgz") { _, _ in }
        #expect(!first.fromCache)
        #expect(first.bytesTransferred == 300_000)
        let second = try await cache.retrieve(file, from: store, to: out + "/second.tgz") { _, _ in }
        #expect(second.fromCache)
        #expect(second.bytesTransferred == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/second.tgz")) == data)
        #expect(try service.counters(for: "a.tgz") == (requests: 1, bytes: 300_000))
        let stats = await cache.statistics
        #expect(
            stats.hits == 1 && stats.misses == 1 && stats.bytesFetched == 300_000
                && stats.bytesServedFromCache == 300_000)

        // A new cache object over the same directory (a restart) still hits.
        let restarted = FileCache(root: dir.path + "/cache", maxBytes: 10_000_000)
        let third = try await restarted.retrieve(file, from: store, to: out + "/third.tgz") { _, _ in }
        #expect(third.fromCache)
        #expect(try service.counters(for: "a.tgz").requests == 1)

        // Another checksum for the same id is another entry: fetched (and here rejected by verification).
        var other = file
        other.checksum = "12345"
        await #expect(throws: DeliveryError.self) {
            try await restarted.retrieve(other, from: store, to: out + "/other.tgz") { _, _ in }
        }
        #expect(!FileManager.default.fileExists(atPath: out + "/other.tgz"))
    }

    @Test("concurrent requests for one entry share a single fetch")
    func concurrentRequestsShareOneFetch() async throws {
        let dir = try TemporaryDirectory("cache-shared")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let out = try dir.sub("out")
        let data = try writeRandomFile(storeDir + "/s.tgz", size: 200_000)
        let service = try TestService.faultStore(store: storeDir, runDirectory: try dir.sub("run"))
        defer { service.stop() }
        let store = HTTPArchiveStore(baseURL: service.baseURL + "/slow")
        let file = expected("s.tgz", data)
        let cache = FileCache(root: try dir.sub("cache"), maxBytes: 10_000_000)
        let results = try await withThrowingTaskGroup(of: RetrievedFile.self) { group in
            for i in 0..<3 {
                group.addTask {
                    try await cache.retrieve(file, from: store, to: out + "/copy\(i)", progress: { _, _ in })
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 3)
        #expect(results.reduce(Int64(0)) { $0 + $1.bytesTransferred } == 200_000)
        #expect(try service.counters(for: "s.tgz") == (requests: 1, bytes: 200_000))
        for i in 0..<3 { #expect(try Data(contentsOf: URL(fileURLWithPath: out + "/copy\(i)")) == data) }
    }

    @Test("LRU eviction never evicts pinned entries")
    func evictionRespectsPins() async throws {
        let dir = try TemporaryDirectory("cache-lru")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let out = try dir.sub("out")
        var files: [ExpectedFile] = []
        for name in ["a", "b", "c", "d"] {
            files.append(expected(name, try writeRandomFile(storeDir + "/" + name, size: 100_000)))
        }
        let store = LocalDirectoryStore(root: storeDir)
        let cache = FileCache(root: try dir.sub("cache"), maxBytes: 300_000)
        for file in files.prefix(3) {
            _ = try await cache.retrieve(file, from: store, to: out + "/" + file.fileId) { _, _ in }
        }
        // a is least recently used, but pinned: adding d must evict b instead.
        await cache.pin(files[0])
        _ = try await cache.retrieve(files[3], from: store, to: out + "/d") { _, _ in }
        #expect(try await cache.contains(files[0]))
        #expect(try await !cache.contains(files[1]))
        #expect(try await cache.contains(files[2]))
        #expect(try await cache.contains(files[3]))
        var stats = await cache.statistics
        #expect(stats.evictions == 1)
        #expect(stats.currentBytes == 300_000)
        // A hard link handed out stays valid after eviction.
        #expect(FileManager.default.fileExists(atPath: out + "/b"))

        // Everything pinned: the cache grows beyond its limit rather than evicting a pinned entry.
        for file in files { await cache.pin(file) }
        _ = try await cache.retrieve(files[1], from: store, to: out + "/b2") { _, _ in }
        stats = await cache.statistics
        #expect(stats.currentBytes == 400_000)
        // Unpinning a (the least recently used, pinned twice) lets the cache shrink back by evicting it.
        await cache.unpin(files[0])
        #expect(await cache.statistics.currentBytes == 400_000)
        await cache.unpin(files[0])
        stats = await cache.statistics
        #expect(stats.currentBytes == 300_000)
        #expect(try await !cache.contains(files[0]))
        for file in files.dropFirst() { await cache.unpin(file) }
        #expect(await cache.statistics.currentBytes == 300_000)
    }
}

@Suite("Transfers", .tags(.integration), .selected(.integration))
struct TransfersTests {
    @Test("retrieveAll fetches in parallel with aggregate progress; the first error cancels the rest")
    func retrieveAll() async throws {
        let dir = try TemporaryDirectory("transfers")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let out = try dir.sub("out")
        var files: [(ExpectedFile, destination: String)] = []
        for i in 0..<6 {
            let data = try writeRandomFile(storeDir + "/f\(i)", size: 50_000 + i)
            var crc = Checksum(.crc32c)
            crc.update(data)
            files.append(
                (
                    ExpectedFile(
                        fileId: "f\(i)", size: Int64(data.count), checksum: crc.decimalString, checksumVariant: .crc32c),
                    out + "/f\(i)"
                ))
        }
        let log = ProgressLog()
        let results = try await Transfers.retrieveAll(files, from: LocalDirectoryStore(root: storeDir), parallelism: 3)
        { done, total in
            log.add(done, total)
        }
        #expect(results.map(\.fileId) == files.map(\.0.fileId))
        let total = files.reduce(Int64(0)) { $0 + $1.0.size! }
        #expect(log.values.last?.0 == total)
        #expect(log.values.allSatisfy { $0.1 == total })

        // One missing file fails the whole batch.
        var broken = files.map { ($0.0, destination: $0.destination + ".again") }
        broken.insert((ExpectedFile(fileId: "missing"), destination: out + "/missing"), at: 1)
        let error = try await #require(throws: DeliveryError.self) {
            try await Transfers.retrieveAll(broken, from: LocalDirectoryStore(root: storeDir), parallelism: 2)
        }
        #expect(error.code == .fileNotFound)
    }

    @Test("a failing file cancels the other transfers of the batch promptly")
    func firstErrorCancelsTheRest() async throws {
        let dir = try TemporaryDirectory("transfers-cancel")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let out = try dir.sub("out")
        try writeRandomFile(storeDir + "/big", size: 1 << 20)
        let service = try TestService.faultStore(store: storeDir, runDirectory: try dir.sub("run"))
        defer { service.stop() }
        var options = HTTPStoreOptions()
        options.lowSpeedTime = .seconds(120)
        let stalling = HTTPArchiveStore(baseURL: service.baseURL + "/stall", options: options)
        let files: [(ExpectedFile, destination: String)] = [
            (ExpectedFile(fileId: "big"), destination: out + "/big"),
            (ExpectedFile(fileId: "missing"), destination: out + "/missing"),
        ]
        let start = ContinuousClock.now
        let error = try await #require(throws: DeliveryError.self) {
            try await Transfers.retrieveAll(files, parallelism: 2) { file, destination, progress in
                if file.fileId == "missing" {
                    // Fail once the stalled transfer is under way.
                    poll(for: 10) { ((try? service.counters(for: "big").bytes) ?? 0) > 0 }
                }
                return try await stalling.retrieve(file, to: destination, progress: progress)
            }
        }
        #expect(error.code == .fileNotFound)
        // The stall would last until the 120 s low-speed limit; a cancelled one ends long before (the bound leaves
        // room for a loaded machine without letting a wait for the stall pass).
        #expect(ContinuousClock.now - start < .seconds(60), "the stalled transfer was cancelled, not waited for")
        #expect(!FileManager.default.fileExists(atPath: out + "/big"))
    }

    @Test("LocalDirectoryStore verifies size and checksum and validates ids")
    func localStoreVerifies() async throws {
        let dir = try TemporaryDirectory("local-store")
        defer { dir.remove() }
        let storeDir = try dir.sub("store")
        let data = try writeRandomFile(storeDir + "/x.tgz", size: 10_000)
        let store = LocalDirectoryStore(root: storeDir)
        var crc = Checksum(.crc32)
        crc.update(data)
        let good = ExpectedFile(fileId: "x.tgz", size: 10_000, checksum: crc.decimalString)
        let result = try await store.retrieve(good, to: dir.path + "/x") { _, _ in }
        #expect(result.size == 10_000)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir.path + "/x")) == data)
        var wrongSum = good
        wrongSum.checksum = String(crc.value ^ 1)
        let e1 = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(wrongSum, to: dir.path + "/y") { _, _ in }
        }
        #expect(e1.code == .checksumMismatch)
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/y"))
        var wrongSize = good
        wrongSize.size = 9_999
        let e2 = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(wrongSize, to: dir.path + "/z") { _, _ in }
        }
        #expect(e2.code == .sizeMismatch)
        let e3 = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(ExpectedFile(fileId: "../store/x.tgz"), to: dir.path + "/w") { _, _ in }
        }
        #expect(e3.code == .invalidFileId)
    }
}
