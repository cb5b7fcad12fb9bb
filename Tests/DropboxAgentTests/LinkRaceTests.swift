import Foundation
import RestoreSteps
import Synchronization
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// A re-submission linked to a running request ends with it, even when the original ends while it is linking.
@Suite(.serialized, .tags(.endToEnd), .selected(.endToEnd)) struct LinkRaceTests {
    @Test func theOriginalEndingWhileTheDuplicateLinksStillEndsTheDuplicate() async throws {
        let gate = Gate()
        let h = try AgentHarness(maxConcurrent: 2) { step, _, _ in
            if step == .deliver { await gate.wait() }
        }
        let spool = h.spool
        // Between reading the original's status (running) and writing its own: let the original finish and
        // update its links (which writes the duplicate's final status), as if it ended in that window.
        let hook: @Sendable () async -> Void = {
            gate.open()
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let data = FileManager.default.contents(atPath: spool + "/again.status.json")
                if let doc = data.flatMap({ try? StatusDocument.decode($0) }), doc.state.isTerminal { return }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        JobRunner.$linkRaceHook.withValue(hook) { h.start() }
        try h.drop("orig.json", AgentHarness.validRequest)
        _ = try await h.waitForStatus("orig") { $0.step?.name == StepName.deliver.rawValue }
        try h.drop("again.json", AgentHarness.validRequest)
        let first = try await h.waitForState("orig", .succeeded)
        // The linked request must not be left `running` by its own late write.
        try await Task.sleep(for: .milliseconds(500))
        let second = try #require(h.status("again"))
        try await h.shutdown()
        #expect(second.state == .succeeded, "linked request left \(second.state)")
        #expect(second.linkedTo?.request == "orig")
        #expect(second.result == first.result)
        #expect(h.log.steps(for: "again").isEmpty, "not run again")
    }
}
