import Foundation
import Synchronization
import Testing
import DropboxTestKit

@testable import InotifyWatcher

extension InotifyWatcherTests {
    @Suite(.tags(.integration), .selected(.integration)) struct Lifecycle {
        @Test func stopEndsIterationPromptlyAndClosesTheDescriptor() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            // Dispatch creates its process-wide descriptors (epoll, eventfd, timerfd) on first use: warm it up.
            let warmUp = try DirectoryWatcher(WatcherConfiguration(directory: directory.path, mode: .inotify))
            warmUp.requestRescan()
            try await waitUntil("warm-up rescan") { warmUp.statistics.rescans == 2 }
            warmUp.stop()
            try await waitUntil("warm-up descriptor closed") { inotifyDescriptors(watching: directory.path).isEmpty }
            let before = openDescriptorCount()
            for round in 0..<20 {
                let mode: WatchMode = round.isMultiple(of: 4) ? .polling : .inotify
                let watcher = try DirectoryWatcher(
                    WatcherConfiguration(directory: directory.path, mode: mode, pollInterval: .milliseconds(5)))
                let recorder = EventRecorder(watcher)
                try await recorder.waitFor("start rescan") {
                    $0.contains(.rescanCompleted(reason: .start, names: round))
                }
                #expect(inotifyDescriptors(watching: directory.path).count == (mode == .inotify ? 1 : 0))
                try Writer.write(directory.file("file-\(round)"), "{}")
                try await recorder.waitFor("candidate") { _ in
                    recorder.candidates("file-\(round)", origin: mode == .inotify ? .event : .rescan) >= 1
                }

                let stopped = ContinuousClock.now
                watcher.stop()
                try await waitUntil("iteration ended", timeout: .seconds(2)) { recorder.hasEnded }
                #expect(ContinuousClock.now - stopped < .milliseconds(500))
                #expect(watcher.statistics.rescans >= 1)
                watcher.stop()  // idempotent
                var iterator = watcher.makeAsyncIterator()
                #expect(await iterator.next() == nil)
            }
            try await waitUntil("no inotify descriptor left on the directory") {
                inotifyDescriptors(watching: directory.path).isEmpty
            }
            #expect(descriptorsReferring(to: directory.path).isEmpty, "\(describeDescriptors())")
            // Other test targets may open and close descriptors in parallel in this process, so allow noise below
            // the one-per-round that a leaking watcher would add.
            try await waitUntil("descriptor count back to about \(before), now \(describeDescriptors())") {
                openDescriptorCount() < before + 20
            }
        }

        @Test func cancellingTheConsumerEndsTheStreamAndClosesTheDescriptor() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path, mode: .inotify))
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }
            #expect(inotifyDescriptors(watching: directory.path).count == 1)
            recorder.task.cancel()
            try await waitUntil("iteration ended", timeout: .seconds(2)) { recorder.hasEnded }
            try await waitUntil("descriptor closed") { inotifyDescriptors(watching: directory.path).isEmpty }
        }

        @Test func droppingTheWatcherClosesTheDescriptor() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            do {
                let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path, mode: .inotify))
                #expect(watcher.statistics.watching)
                #expect(inotifyDescriptors(watching: directory.path).count == 1)
            }
            try await waitUntil("descriptor closed") { inotifyDescriptors(watching: directory.path).isEmpty }
        }

        /// Idle means asleep: no handler runs (no busy polling, no timer before the rescan interval). (Process CPU
        /// time is not asserted: other test targets may run in parallel in this process.)
        @Test func idleWatcherDoesNotWakeUp() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path, mode: .inotify))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }
            let wakeups = watcher.core.wakeups.load(ordering: .relaxed)
            // A measurement window, not synchronisation: nothing is supposed to happen during it.
            try await Task.sleep(for: .seconds(1))
            #expect(watcher.core.wakeups.load(ordering: .relaxed) == wakeups)
            #expect(recorder.events.count == 1)

            try Writer.write(directory.file("wake.json"), "{}")  // the counter does move when there is work
            try await recorder.waitFor("event") { _ in recorder.candidates("wake.json") == 1 }
            #expect(watcher.core.wakeups.load(ordering: .relaxed) > wakeups)
        }
    }
}
