import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    @Suite(.tags(.integration), .selected(.integration)) struct WatchLoss {
        enum Removal: String, CaseIterable { case delete, moveAway }

        @Test(arguments: Removal.allCases)
        func directoryRemovedAndRecreatedIsWatchedAgain(removal: Removal) async throws {
            let parent = try TemporaryDirectory()
            defer { parent.remove() }
            let spool = parent.file("spool")
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: spool, mode: .inotify, pollInterval: .milliseconds(50)))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }
            let oldDescriptors = inotifyDescriptors(watching: spool)
            #expect(oldDescriptors.count == 1)

            switch removal {
            case .delete: try FileManager.default.removeItem(atPath: spool)
            case .moveAway: try Writer.rename(spool, parent.file("spool.old"))
            }
            try await recorder.waitFor("watch lost") { events in
                events.contains { if case .watchLost = $0 { true } else { false } }
            }
            guard
                case .watchLost(let reason) = recorder.events.first(where: {
                    if case .watchLost = $0 { true } else { false }
                })
            else { return }
            #expect(reason.contains(removal == .delete ? "IN_DELETE_SELF" : "IN_MOVE_SELF"), "\(reason)")
            #expect(watcher.effectiveMode == .polling)
            #expect(!watcher.statistics.watching)
            #expect(watcher.statistics.lostReason == reason)
            if removal == .moveAway {
                try Writer.write(parent.file("spool.old/stale.json"), "{}")  // the old inode is no longer watched
            }

            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
            try Writer.write(spool + "/early.json", "{}")
            try await recorder.waitFor("watch restored and the new directory rescanned") {
                $0.contains(.watchRestored)
                    && $0.contains { if case .rescanCompleted(.watchRestored, _) = $0 { true } else { false } }
            }
            try await recorder.waitFor("file created before the watch came back") { _ in
                recorder.candidates("early.json") >= 1
            }
            try Writer.write(spool + "/late.json", "{}")
            try await recorder.waitFor("event in the new directory") { _ in
                recorder.candidates("late.json", origin: .event) == 1
            }
            #expect(recorder.candidates("stale.json") == 0)
            let statistics = watcher.statistics
            #expect(statistics.watchLosses == 1)
            #expect(statistics.watching)
            #expect(statistics.lostReason == nil)
            #expect(watcher.effectiveMode == .inotify)
            let lost = try #require(recorder.events.firstIndex { if case .watchLost = $0 { true } else { false } })
            let restored = try #require(recorder.events.firstIndex(of: .watchRestored))
            #expect(lost < restored)
            #expect(inotifyDescriptors(watching: spool).count == 1)
        }

        @Test func pollingWatcherReportsAMissingDirectory() async throws {
            let parent = try TemporaryDirectory()
            defer { parent.remove() }
            let spool = parent.file("spool")
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: spool, mode: .polling, pollInterval: .milliseconds(20)))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try FileManager.default.removeItem(atPath: spool)
            try await recorder.waitFor("watch lost") { events in
                events.contains { if case .watchLost = $0 { true } else { false } }
            }
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
            try Writer.write(spool + "/back.json", "{}")
            try await recorder.waitFor("restored and found") { _ in
                recorder.events.contains(.watchRestored) && recorder.candidates("back.json", origin: .rescan) >= 1
            }
            #expect(watcher.statistics.watchLosses == 1)
            #expect(watcher.effectiveMode == .polling)
        }
    }
}
