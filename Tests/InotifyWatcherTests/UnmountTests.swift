import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    /// A spool that is a mount point: unmounting it loses the watch (`IN_UNMOUNT`), the empty mount point below is
    /// not mistaken for the spool, and mounting again restores the watch. Needs root and mount(8).
    @Suite(.tags(.integration), .selected(.integration)) struct Unmount {
        @Test func unmountedSpoolIsLostUntilTheFilesystemIsMountedAgain() async throws {
            let parent = try TemporaryDirectory()
            defer { parent.remove() }
            let spool = parent.file("spool")
            try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
            try runProgram("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", spool])
            var mounted = true
            defer { if mounted { try? runProgram("/usr/bin/umount", [spool]) } }

            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: spool, pollInterval: .milliseconds(20)))
            defer { watcher.stop() }
            #expect(watcher.effectiveMode == .inotify)
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }

            try runProgram("/usr/bin/umount", [spool])
            mounted = false
            try await recorder.waitFor("watch lost") { events in
                events.contains { if case .watchLost(let reason) = $0 { reason.contains("IN_UNMOUNT") } else { false } }
            }
            try Writer.write(spool + "/underneath.json", "{}")  // on the parent filesystem, not the spool
            // A measurement window of ~25 poll intervals: the bare mount point must not count as the spool.
            try await Task.sleep(for: .milliseconds(500))
            #expect(!recorder.events.contains(.watchRestored))
            #expect(recorder.candidates("underneath.json") == 0)
            try FileManager.default.removeItem(atPath: spool + "/underneath.json")

            try runProgram("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", spool])
            mounted = true
            try await recorder.waitFor("watch restored") { $0.contains(.watchRestored) }
            try Writer.write(spool + "/after.json", "{}")
            try await recorder.waitFor("event on the new mount") { _ in
                recorder.candidates("after.json", origin: .event) == 1
            }
            #expect(watcher.statistics.watchLosses == 1)
            #expect(watcher.effectiveMode == .inotify)
        }
    }
}
