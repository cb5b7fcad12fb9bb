import Delivery
import Foundation
import Testing
import DropboxTestKit

@testable import DropboxAgent

@Suite(.tags(.unit)) struct JobStoreTests {
    func makeStore() throws -> JobStore {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)").path
        let store = JobStore(workDirectory: root + "/spool/.w", spoolDirectory: root + "/spool", rejectedDirectory: root + "/spool/.w/rejected", leaseSeconds: 30)
        try store.prepare()
        return store
    }

    @Test func exactlyOneOfManyClaimsWins() async throws {
        let store = try makeStore()
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/r.json"))
        let winners = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<8 { group.addTask { try? store.claim(name: "r") } }
            return await group.reduce(into: [String]()) { if let id = $1 { $0.append(id) } }
        }
        #expect(winners.count == 1)
        #expect(store.activeJobIds() == winners)
        #expect(FileManager.default.fileExists(atPath: store.jobDirectory(winners[0]) + "/request.json"))
    }

    @Test func takeoverOfAnAttemptHasOneWinner() throws {
        let store = try makeStore()
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/t.json"))
        let jobId = try #require(try store.claim(name: "t"))
        let old = try #require(store.readLease(jobId: jobId))
        let first = try store.takeOver(jobId: jobId, from: old, countsAsAttempt: true)
        let second = try store.takeOver(jobId: jobId, from: old, countsAsAttempt: true)
        #expect(first?.attempt == 2)
        #expect(second == nil, "attempts/2 exists: the second taker lost")
    }

    @Test func garbageCollectionKeepsFailedAndRejectedAndRecentRequests() throws {
        let store = try makeStore()
        let old = Date().timeIntervalSince1970 - 10 * 86400
        var ids: [RequestState: String] = [:]
        for state in [RequestState.succeeded, .cancelled, .failed, .rejected] {
            let name = "g-\(state.rawValue)"
            try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/\(name).json"))
            let jobId = try #require(try store.claim(name: name))
            let statusPath = store.spoolDirectory + "/\(name).status.json"
            let dir = try store.finish(jobId: jobId, name: name, state: state, statusPath: statusPath)
            var doc = StatusDocument(request: name, state: state)
            doc.requestFile = dir + "/request.json"
            try AtomicFile.write(try doc.encoded(), to: statusPath)
            let final = JobStore.FinalRecord(name: name, state: state, finishedAt: old, statusPath: statusPath)
            try AtomicFile.write(try encodeJSON(final), to: dir + "/final.json")
            ids[state] = jobId
        }
        let removed = store.collectGarbage(retention: 7 * 86400)
        #expect(Set(removed) == [ids[.succeeded]!, ids[.cancelled]!])
        #expect(!FileManager.default.fileExists(atPath: store.spoolDirectory + "/g-succeeded.status.json"))
        #expect(FileManager.default.fileExists(atPath: store.spoolDirectory + "/g-failed.status.json"))
        #expect(FileManager.default.fileExists(atPath: store.finishedDirectory + "/" + ids[.rejected]!))
        #expect(store.collectGarbage(retention: 1).isEmpty, "failed and rejected requests are never collected")
    }
}
