import Delivery
import Foundation
import Logging
import Synchronization
import Testing

@testable import DropboxAgent

/// The lease renewal thread: renewals on a fixed grid of deadlines that slow passes do not shift, lost leases stop
/// their job, released leases stay released.
@Suite("Lease renewal", .serialized)
struct LeaseRenewerTests {
    func makeStore() throws -> JobStore {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("renewer-\(UUID().uuidString)").path
        let store = JobStore(
            workDirectory: root + "/spool/.w", spoolDirectory: root + "/spool",
            rejectedDirectory: root + "/spool/.w/rejected", leaseSeconds: 30)
        try store.prepare()
        return store
    }

    func claimed(_ store: JobStore, _ name: String) throws -> String {
        try Data("{}".utf8).write(to: URL(fileURLWithPath: store.spoolDirectory + "/\(name).json"))
        return try #require(try store.claim(name: name))
    }

    @Test func theNextDeadlineStaysOnTheGrid() {
        #expect(
            LeaseRenewer.nextDeadline(after: 10, now: 10.4, interval: 5) == 15,
            "a pass that took 0.4 s does not shift the next one")
        #expect(LeaseRenewer.nextDeadline(after: 10, now: 14.99, interval: 5) == 15)
        #expect(
            LeaseRenewer.nextDeadline(after: 10, now: 15, interval: 5) == 20, "a deadline already reached is skipped")
        #expect(
            LeaseRenewer.nextDeadline(after: 10, now: 26.5, interval: 5) == 30,
            "missed deadlines are skipped, the grid kept")
    }

    /// Passes that take 60 % of the interval: a loop that sleeps an interval after each pass would start its sixth
    /// pass 6 × 0.8 s after the first; on the grid it starts 6 × 0.5 s after it. Polled with a deadline; the bound
    /// lies halfway between the two.
    @Test func slowPassesDoNotDelayTheSchedule() throws {
        let store = try makeStore()
        let jobId = try claimed(store, "grid")
        let starts = Mutex<[Double]>([])
        let interval = 0.5
        let renewer = LeaseRenewer(
            store: store, interval: interval, logger: Logger(label: "test"),
            beforePass: {
                starts.withLock { $0.append(LeaseRenewer.monotonicNow()) }
                usleep(300_000)
            })
        renewer.hold(.init(jobId: jobId, name: "grid", attempt: 1, control: JobControl()))
        renewer.start()
        defer { renewer.stop() }
        let deadline = Date().addingTimeInterval(60)
        while starts.withLock({ $0.count }) < 7 && Date() < deadline { usleep(20_000) }
        let times = starts.withLock { $0 }
        try #require(times.count >= 7, "seven renewal passes within 60 s")
        let span = times[6] - times[0]
        #expect(
            span < 6 * interval + 6 * 0.3 / 2, "six intervals took \(span) s: the schedule drifted by the passes' time")
        let heartbeat = try #require(store.readLease(jobId: jobId)).heartbeat
        #expect(Date().timeIntervalSince1970 - heartbeat < 5, "the lease was renewed")
    }

    @Test func aLeaseTakenOverStopsItsJobAndIsNoLongerRenewed() throws {
        let store = try makeStore()
        let jobId = try claimed(store, "lost")
        let old = try #require(store.readLease(jobId: jobId))
        // A takeover: attempt 2 exists now, so attempt 1 is no longer held.
        let taken = try #require(try store.takeOver(jobId: jobId, from: old, countsAsAttempt: true))
        let control = JobControl()
        let renewer = LeaseRenewer(store: store, interval: 10, logger: Logger(label: "test"))
        renewer.hold(.init(jobId: jobId, name: "lost", attempt: 1, control: control))
        renewer.renewAll()
        #expect(control.stopReason == .leaseLost)
        #expect(renewer.heldJobs.isEmpty)
        #expect(store.readLease(jobId: jobId) == taken, "the new attempt's lease is untouched")
    }

    @Test func aReleasedLeaseStaysReleased() throws {
        let store = try makeStore()
        let jobId = try claimed(store, "released")
        let renewer = LeaseRenewer(store: store, interval: 10, logger: Logger(label: "test"))
        renewer.hold(.init(jobId: jobId, name: "released", attempt: 1, control: JobControl()))
        renewer.renewAll()
        #expect(store.readLease(jobId: jobId)?.released == false)
        _ = try store.renewLease(jobId: jobId, attempt: 1, released: true)
        renewer.renewAll()
        #expect(
            store.readLease(jobId: jobId)?.released == true, "a renewal racing with the release does not take it back")
    }

    @Test func aHungWorkLoopStopsTheRenewals() throws {
        let store = try makeStore()
        let jobId = try claimed(store, "hung")
        let renewer = LeaseRenewer(store: store, interval: 10, logger: Logger(label: "test"))
        renewer.hold(.init(jobId: jobId, name: "hung", attempt: 1, control: JobControl()))
        var stale = try #require(store.readLease(jobId: jobId))
        stale.heartbeat = 1000
        try AtomicFile.write(try encodeJSON(stale), to: store.leasePath(jobId: jobId, attempt: 1))
        renewer.requireLiveness(within: 0.05)
        usleep(100_000)  // the work loop did not note a round for longer than that
        renewer.renewAll()
        #expect(store.readLease(jobId: jobId)?.heartbeat == 1000, "not renewed while the work loop is silent")
        renewer.noteAlive()
        renewer.renewAll()
        #expect((store.readLease(jobId: jobId)?.heartbeat ?? 0) > 1000, "renewed again once it ran")
        // Silent again, and meanwhile taken over: the job is stopped all the same (checked, not renewed).
        let control = JobControl()
        renewer.hold(.init(jobId: jobId, name: "hung", attempt: 1, control: control))
        let held = try #require(store.readLease(jobId: jobId))
        let taken = try #require(try store.takeOver(jobId: jobId, from: held, countsAsAttempt: true))
        renewer.requireLiveness(within: 0.05)
        usleep(100_000)
        renewer.renewAll()
        #expect(control.stopReason == .leaseLost)
        #expect(store.readLease(jobId: jobId) == taken)
    }
}
