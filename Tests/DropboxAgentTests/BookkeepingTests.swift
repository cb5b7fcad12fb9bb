import Foundation
import RestoreSteps
import Synchronization
import Testing

@testable import DropboxAgent

/// A job's own bookkeeping (checkpoints, journal rows, status transitions) runs on the bookkeeping threads, never
/// on the cooperative pool.
@Suite("Job bookkeeping off the cooperative pool")
struct BookkeepingTests {
    @Test func checkpointsAndJournalRowsAreWrittenOnTheBookkeepingThreads() async throws {
        let before = Bookkeeping.writesOnExecutor.load(ordering: .relaxed)
        let h = try AgentHarness(step: { _, _, reporter in
            reporter.report(.init(fraction: 0.5, message: "half way"))
        })
        h.start()
        try h.drop("bk.json", AgentHarness.validRequest)
        _ = try await h.waitForState("bk", .succeeded)
        try await h.shutdown()
        let on = Bookkeeping.writesOnExecutor.load(ordering: .relaxed) - before
        // claim checkpoint + journal row, 6 × (step start + checkpoint), the conclusion's journal row, at least.
        #expect(on >= 14, "\(on) bookkeeping writes on the bookkeeping threads")
        #expect(
            Bookkeeping.writesElsewhere.load(ordering: .relaxed) == 0, "a job bookkeeping write ran on another thread")
    }
}
