import Delivery
import Foundation
import Synchronization
import Testing
import DropboxTestKit

/// Cancelling the task that awaits ``BlockingWork`` stops extraction and publishing between blocks, and leaves
/// nothing half-done.
@Suite("Blocking work and cancellation", .serialized, .tags(.integration), .selected(.integration))
struct BlockingCancellationTests {
    /// A tar of one 64 MiB random file (so extraction and hashing take many 1 MiB blocks).
    private func bigSource(in dir: String) throws -> (tree: String, tar: String) {
        let tree = dir + "/big.ms"
        try FileManager.default.createDirectory(atPath: tree, withIntermediateDirectories: true)
        _ = try writeRandomFile(tree + "/table.f0", size: 64 << 20)
        let tar = dir + "/big.tar"
        try SafeArchive.createTar(of: tree, at: tar, gzip: false)
        return (tree, tar)
    }

    @Test func aSetFlagStopsExtractionAndPublishingAndLeavesNothing() throws {
        let dir = try TemporaryDirectory("blocking-flag")
        defer { dir.remove() }
        let (tree, tar) = try bigSource(in: dir.path)
        let flag = CancellationFlag()
        flag.cancel()
        let target = dir.path + "/out"
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
        #expect(throws: DeliveryError.self) { try SafeArchive.extract(tar, into: target, cancelled: flag) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty)
        let area = dir.path + "/area"
        try FileManager.default.createDirectory(atPath: area, withIntermediateDirectories: true)
        for format in [PublishFormat.directory, .tar] {
            do {
                try Publisher.publish([tree], to: area, name: "r1", format: format, cancelled: flag)
                Issue.record("publishing with a set flag succeeded")
            } catch {
                #expect(error.code == .cancelled)
            }
            #expect(try FileManager.default.contentsOfDirectory(atPath: area).isEmpty, "nothing published or staged")
        }
    }

    @Test func cancellingTheAwaitingTaskSetsTheThreadsCurrentFlag() async throws {
        let dir = try TemporaryDirectory("blocking-task")
        defer { dir.remove() }
        let started = Atomic<Bool>(false)
        let task = Task {
            try await BlockingWork.run { (_) throws(DeliveryError) -> Int in
                started.store(true, ordering: .relaxed)
                var spins = 0
                // What the deep loops do: check the thread's current flag.
                while true {
                    try CancellationFlag.current?.check("spinning")
                    usleep(1000)
                    spins += 1
                    if spins > 20_000 { return spins }
                }
            }
        }
        while !started.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(5)) }
        let cancelledAt = ContinuousClock.now
        task.cancel()
        await #expect(throws: DeliveryError.self) { _ = try await task.value }
        // The body would spin for 20 s; a bound well below that, generous for a loaded 2-core machine.
        #expect(ContinuousClock.now - cancelledAt < .seconds(10))
    }

    /// Work that prefers a ``ThreadPoolTaskExecutor`` (and its child tasks) runs on its threads, not on the
    /// cooperative pool.
    @Test func tasksPreferringTheThreadPoolRunOnItsThreads() async {
        let executor = ThreadPoolTaskExecutor(name: "bk-test", threads: 2)
        let onPool = await withTaskExecutorPreference(executor) { await Self.whereItRuns(executor) }
        #expect(onPool == [true, true, true, true, true])
        #expect(
            await Self.whereItRuns(executor) == [false, false, false, false, false],
            "without the preference: the cooperative pool")
    }

    /// Whether this function, and four child tasks, ran on `executor`'s threads.
    private static func whereItRuns(_ executor: ThreadPoolTaskExecutor) async -> [Bool] {
        let here = executor.isCurrentThread
        let children = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 { group.addTask { executor.isCurrentThread } }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        return [here] + children
    }
}
