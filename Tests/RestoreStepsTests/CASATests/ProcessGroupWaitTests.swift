import Foundation
import Testing

@testable import RestoreSteps

/// Teardown in a cancelled task: the wait is not cut short and does not spin.
@Suite(.serialized, .timeLimit(.minutes(1)))
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
            if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
               let stat = ProcessGroup.stat(pid), stat.pgrp == pid {
                pgid = pid
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        let group = ProcessGroup(id: try #require(pgid, "the shell did not start its own session"))
        defer { group.send(SIGKILL) }
        try await Task.sleep(for: .milliseconds(100))  // exec sleep
        #expect(!group.livingMembers.isEmpty)

        var before = rusage()
        getrusage(RUSAGE_SELF.rawValue, &before)
        let started = ContinuousClock.now
        let task = Task { () -> [Int32] in
            withUnsafeCurrentTask { $0?.cancel() }
            return await group.terminate(grace: .seconds(1))
        }
        let survivors = await task.value
        let elapsed = ContinuousClock.now - started
        var after = rusage()
        getrusage(RUSAGE_SELF.rawValue, &after)

        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        let cpu = seconds(after.ru_utime) + seconds(after.ru_stime) - seconds(before.ru_utime) - seconds(before.ru_stime)
        #expect(survivors.isEmpty)
        #expect(elapsed >= .milliseconds(900), "the grace period was cut short by cancellation: \(elapsed)")
        #expect(elapsed < .seconds(4), "SIGKILL after the grace: \(elapsed)")
        #expect(cpu < 0.5, "waiting used \(cpu) s of CPU: it spins")
    }
}
