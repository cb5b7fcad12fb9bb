import Foundation
import Synchronization
import Testing
import DropboxTestKit

@testable import RestoreSteps

/// Teardown in a cancelled task: the wait is not cut short and does not spin.
@Suite(.serialized, .timeLimit(.minutes(1)), .tags(.integration), .selected(.integration))
struct ProcessGroupWaitTests {
    @Test func terminateInACancelledTaskWaitsTheGraceWithoutSpinning() async throws {
        // A session (and group) leader that ignores SIGTERM (SIG_IGN survives exec), so the grace is used in full.
        let pidFile = NSTemporaryDirectory() + "pgwait-\(UUID().uuidString.prefix(8)).pid"
        defer { unlink(pidFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setsid")
        process.arguments = ["sh", "-c", "trap '' TERM; echo $$ > \(pidFile); exec sleep 30"]
        try process.run()
        var pgid: Int32?
        for _ in 0..<250 {
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                let stat = ProcessGroup.stat(pid), stat.pgrp == pid
            {
                pgid = pid
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let group = ProcessGroup(id: try #require(pgid, "the shell did not start its own session"))
        defer { group.send(SIGKILL) }
        try await Task.sleep(for: .milliseconds(100))  // exec sleep
        #expect(!group.livingMembers.isEmpty)

        let scansBefore = ProcessGroup.scans.load(ordering: .relaxed)
        let started = ContinuousClock.now
        let task = Task { () -> [Int32] in
            withUnsafeCurrentTask { $0?.cancel() }
            return await group.terminate(grace: .seconds(1))
        }
        let survivors = await task.value
        let elapsed = ContinuousClock.now - started
        // Counted, not timed: the process's CPU time would include every test running beside this one. A 50 ms
        // sleep between scans makes about 25 in the 1 s grace plus the kill; a spinning wait makes thousands.
        let scans = ProcessGroup.scans.load(ordering: .relaxed) - scansBefore
        #expect(survivors.isEmpty)
        #expect(elapsed >= .milliseconds(900), "the grace period was cut short by cancellation: \(elapsed)")
        #expect(elapsed < .seconds(4), "SIGKILL after the grace: \(elapsed)")
        #expect(scans < 200, "\(scans) /proc scans while waiting: it spins")
    }
}
