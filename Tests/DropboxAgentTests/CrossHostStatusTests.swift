import Delivery
import Foundation
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// Another host's `queued`, written in the instant before our claim, landing after our final status (across hosts
/// the spool-entry `flock` orders nothing): the claimer writes its final status again.
@Suite(.serialized, .tags(.endToEnd), .selected(.endToEnd)) struct CrossHostStatusTests {
    @Test func aStaleQueuedLandingAfterTheFinalStatusIsReplaced() async throws {
        let h = try AgentHarness { _, _, _ in }
        let records = StatusRecords(configuration: h.runtime.configuration)
        let hook: @Sendable (String) async -> Void = { _ in
            // What the other host computed from the record it read before the claim: `queued`, an old sequence,
            // published as every agent publishes (the record, then the status file).
            var stale = StatusDocument(request: "r", state: .queued)
            stale.transition(to: .queued, message: "complete and valid; waiting for a free slot")
            stale.sequence = 1
            _ = try? records.write(stale, name: "r")
        }
        JobRunner.$concludedHook.withValue(hook) { h.start() }
        try h.drop("r.json", AgentHarness.validRequest)
        let final = try await h.waitForStatus("r") {
            $0.state == .succeeded && ($0.sequence ?? 0) > 1 && $0.finishedAt != nil
        }
        try await h.shutdown()
        let onDisk = try #require(h.status("r"))
        #expect(onDisk.state == .succeeded, "left \(onDisk.state) by the stale write")
        #expect((onDisk.sequence ?? 0) >= (final.sequence ?? 0))
        #expect(onDisk.requestFile?.contains("/finished/") == true)
    }
}
