import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    /// overlayfs: a file added to a lower layer appears in the merged directory without any inotify event (§3.8 of
    /// the reference). Automatic mode must poll there; a forced inotify watch must count the file as found only by
    /// the rescan. Needs root and mount(8).
    @Suite(.tags(.integration), .selected(.integration)) struct Overlay {
        @Test func lowerLayerChangesArePolledAndCountedAsRescanOnlyFinds() async throws {
            let root = try TemporaryDirectory()
            defer { root.remove() }
            for name in ["lower", "upper", "work", "merged"] {
                try FileManager.default.createDirectory(atPath: root.file(name), withIntermediateDirectories: false)
            }
            let merged = root.file("merged")
            let options = "lowerdir=\(root.file("lower")),upperdir=\(root.file("upper")),workdir=\(root.file("work"))"
            try runProgram("/usr/bin/mount", ["-t", "overlay", "overlay", "-o", options, merged])
            defer { try? runProgram("/usr/bin/umount", [merged]) }

            let filesystem = try FilesystemInfo.of(path: merged)
            #expect(filesystem.typeName == "overlayfs")
            #expect(!filesystem.inotifyReliable)
            let automatic = try DirectoryWatcher(
                WatcherConfiguration(directory: merged, pollInterval: .milliseconds(20)))
            defer { automatic.stop() }
            #expect(automatic.effectiveMode == .polling)
            let forced = try DirectoryWatcher(
                WatcherConfiguration(directory: merged, mode: .inotify, rescanInterval: .milliseconds(20)))
            defer { forced.stop() }
            #expect(forced.effectiveMode == .inotify)
            let polled = EventRecorder(automatic)
            let watched = EventRecorder(forced)

            try Writer.write(root.file("lower/from-lower.json"), "{}")  // behind the overlay's back
            try Writer.write(merged + "/through-overlay.json", "{}")  // through the overlay: inotify sees it
            try await polled.waitFor("polling finds both") { _ in
                polled.candidateNames == ["from-lower.json", "through-overlay.json"]
            }
            try await watched.waitFor("the interval rescan finds the lower-layer file") { _ in
                watched.candidates("from-lower.json", origin: .rescan) >= 1
            }
            #expect(watched.candidates("from-lower.json", origin: .event) == 0)
            try await watched.waitFor("the overlay write is an event") { _ in
                watched.candidates("through-overlay.json", origin: .event) == 1
            }
            try await waitUntil("the lower-layer file counted as found only by a rescan") {
                forced.statistics.rescanOnlyFinds == 1
            }
            #expect(automatic.statistics.rescanOnlyFinds == 0)  // not counted in polling mode
        }
    }
}
