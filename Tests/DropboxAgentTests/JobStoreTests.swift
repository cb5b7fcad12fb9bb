import Delivery
import Foundation
import Testing
import DropboxTestKit

@testable import DropboxAgent

@Suite(.tags(.unit)) struct JobStoreTests {
    func makeStore() throws -> JobStore {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)").path
        let store = JobStore(
            workDirectory: root + "/spool/.w", spoolDirectory: root + "/spool",
            rejectedDirectory: root + "/spool/.w/rejected", leaseSeconds: 30)
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
        #expect(second == nil, "attempts/2.json exists: the second taker lost")
        #expect(store.readLease(jobId: jobId) == first)
    }

    /// A stalled owner's renewal after a takeover: refused, and it never overwrites the new owner's lease (no
    /// read-modify-write of a shared file, no lock).
    @Test func aStalledOwnersRenewalNeitherSucceedsNorOverwritesTheTakeover() throws {
        let store = try makeStore()
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/s.json"))
        let jobId = try #require(try store.claim(name: "s"))
        let old = try #require(store.readLease(jobId: jobId))
        #expect(store.holdsLease(jobId: jobId, attempt: 1))
        let taken = try #require(try store.takeOver(jobId: jobId, from: old, countsAsAttempt: true))
        #expect(try store.renewLease(jobId: jobId, attempt: 1) == nil)
        #expect(!store.holdsLease(jobId: jobId, attempt: 1), "attempt 1 is fenced off")
        #expect(store.holdsLease(jobId: jobId, attempt: 2))
        #expect(store.readLease(jobId: jobId) == taken, "the takeover's lease is untouched")
        #expect(taken.countedAttempts == 2)
        let renewed = try #require(try store.renewLease(jobId: jobId, attempt: 2))
        #expect(renewed.heartbeat >= taken.heartbeat && store.readLease(jobId: jobId) == renewed)
        #expect(!FileManager.default.fileExists(atPath: store.jobDirectory(jobId) + "/lease.lock"), "no lock file")
    }

    /// Concluding and being taken over exclude each other, in either order.
    @Test func concludingAndTakingOverExcludeEachOther() throws {
        let store = try makeStore()
        for name in ["c1", "c2"] {
            try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/\(name).json"))
        }
        // The owner concludes first: a taker holding the lease it read before loses.
        let first = try #require(try store.claim(name: "c1"))
        let seen = try #require(store.readLease(jobId: first))
        #expect(try store.claimConclusion(jobId: first, attempt: 1))
        #expect(try store.claimConclusion(jobId: first, attempt: 1), "idempotent for its holder")
        #expect(try store.takeOver(jobId: first, from: seen, countsAsAttempt: true) == nil)
        #expect(store.holdsLease(jobId: first, attempt: 1), "the conclusion claim extends the attempt")
        let renewed = try #require(try store.renewLease(jobId: first, attempt: 1))
        #expect(renewed.attempt == 2 && renewed.concludes == 1, "renewal keeps the conclusion claim alive")
        _ = try store.finish(
            jobId: first, name: "c1", state: .succeeded, statusPath: store.spoolDirectory + "/c1.status.json")
        #expect(store.holdsLease(jobId: first, attempt: 1), "still true once moved to finished/")
        #expect(
            try store.renewLease(jobId: first, attempt: 1)?.concludes == 1,
            "a concluded job's renewal is not a lost lease")
        // A taker first: the owner may not conclude any more.
        let second = try #require(try store.claim(name: "c2"))
        let old = try #require(store.readLease(jobId: second))
        _ = try #require(try store.takeOver(jobId: second, from: old, countsAsAttempt: true))
        #expect(try store.claimConclusion(jobId: second, attempt: 1) == false)
        #expect(!store.holdsLease(jobId: second, attempt: 1))
    }

    /// A resume after a clean stop gets a new fencing token but is not counted against maxAttempts.
    @Test func aResumeIsANewTokenButNotACountedAttempt() throws {
        let store = try makeStore()
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/r.json"))
        let jobId = try #require(try store.claim(name: "r"))
        let released = try #require(try store.renewLease(jobId: jobId, attempt: 1, released: true))
        #expect(released.released && released.isAvailable())
        let resumed = try #require(try store.takeOver(jobId: jobId, from: released, countsAsAttempt: false))
        #expect(resumed.attempt == 2 && resumed.countedAttempts == 1 && !resumed.released)
    }

    /// A job folder with a request but no lease gets an expired one, exactly once.
    @Test func aLostLeaseIsRestoredExpiredOnce() throws {
        let store = try makeStore()
        let jobId = "lost.20261205T000000.h.1.1"
        try FileManager.default.createDirectory(
            atPath: store.jobDirectory(jobId) + "/attempts", withIntermediateDirectories: true)
        #expect(store.readLease(jobId: jobId) == nil)
        #expect(try store.restoreLease(jobId: jobId, countedAttempts: 2))
        #expect(try store.restoreLease(jobId: jobId, countedAttempts: 2) == false)
        let lease = try #require(store.readLease(jobId: jobId))
        #expect(lease.isExpired() && lease.countedAttempts == 2)
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
            try store.statusRecords().write(doc, name: name)
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
