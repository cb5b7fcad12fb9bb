import Foundation
import Glibc
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    @Suite(.tags(.integration), .selected(.integration)) struct Rescans {
        @Test func filesCreatedBeforeTheWatcherStartsAreFoundByTheStartRescan() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let existing = names("early", count: 50)
            for name in existing { try Writer.write(directory.file(name), "{}") }
            try Writer.write(directory.file(".hidden.json.tmp"), "{}")

            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory.path, mode: .inotify, include: NameFilter().accepts))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 50)) }

            let startEvents = recorder.events.prefix(while: { $0 != .rescanCompleted(reason: .start, names: 50) })
            #expect(startEvents.count == 50)
            #expect(Set(startEvents) == Set(existing.map { WatchEvent.candidate(name: $0, origin: .rescan) }))
            #expect(watcher.statistics.rescans == 1)
            #expect(watcher.statistics.rescanOnlyFinds == 0)
        }

        @Test func requestedRescanReportsWaitingFilesAgain() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try Writer.write(directory.file("waiting.json"), "{}")
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path, mode: .inotify))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 1)) }

            watcher.requestRescan()
            try await recorder.waitFor("requested rescan") {
                $0.contains(.rescanCompleted(reason: .requested, names: 1))
            }
            #expect(recorder.candidates("waiting.json", origin: .rescan) == 2)
            #expect(watcher.statistics.rescans == 2)
            #expect(watcher.statistics.rescanOnlyFinds == 0)  // it was there at the previous rescan
        }

        /// Files written while interval rescans run are seen by both; none may count as missed by inotify.
        @Test func intervalRescansDoNotCountFilesThatHaveEvents() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory.path, mode: .inotify, rescanInterval: .milliseconds(10)))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            let created = names("steady", count: 200)
            for name in created {
                // Open, write, yield, close: some rescans see the file before its CLOSE_WRITE exists.
                let descriptor = open(directory.file(name), O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
                try #require(descriptor >= 0)
                _ = "{}".withCString { Glibc.write(descriptor, $0, 2) }
                await Task.yield()
                close(descriptor)
            }
            // A CLOSE_WRITE whose name is still waiting in the buffer as a rescan candidate is not queued twice, so
            // count events in the statistics and names in the recorder.
            try await waitUntil("an event for every file") { watcher.statistics.events == created.count }
            try await recorder.waitFor("every file reported") { _ in recorder.candidateNames == Set(created) }
            let finished = ContinuousClock.now
            // A false count would show up one grace period (1 s) after the rescan that found the file.
            try await waitUntil("1.5 s of interval rescans after the last file", timeout: .seconds(5)) {
                #expect(watcher.statistics.rescanOnlyFinds == 0)
                return ContinuousClock.now - finished > .milliseconds(1500)
            }
            #expect(watcher.statistics.rescans > 10)
            #expect(recorder.events.contains { if case .rescanCompleted(.interval, _) = $0 { true } else { false } })
            #expect(watcher.statistics.rescanOnlyFinds == 0)
        }
    }
}
