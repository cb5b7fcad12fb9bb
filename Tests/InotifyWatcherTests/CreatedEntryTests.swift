import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    /// Entries that are never closed after writing (links, FIFOs, directories) are reported by `IN_CREATE` at
    /// once, not only at the next rescan; regular files still wait for their close.
    @Suite(.tags(.integration), .selected(.integration)) struct CreatedEntries {
        @Test func linksFifosDirectoriesAndHardLinksAreReportedWithoutARescan() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory.path, mode: .inotify, rescanInterval: .seconds(3600)))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }

            #expect(symlink("/etc/shadow", directory.file("link.json")) == 0)
            #expect(mkfifo(directory.file("fifo.json"), 0o644) == 0)
            #expect(mkdir(directory.file("dir.json"), 0o755) == 0)
            try Writer.write(directory.file("target"), "{}")
            #expect(link(directory.file("target"), directory.file("hard.json")) == 0)
            for name in ["link.json", "fifo.json", "dir.json", "hard.json"] {
                try await recorder.waitFor("\(name) reported by its creation event") { _ in
                    recorder.candidates(name, origin: .event) >= 1
                }
            }
            #expect(watcher.statistics.rescans == 1, "only the start rescan ran")

            // A regular file being written is not reported at creation, only when closed.
            let fd = open(directory.file("open.json"), O_WRONLY | O_CREAT, 0o644)
            #expect(fd >= 0)
            try await Task.sleep(for: .milliseconds(200))
            #expect(recorder.candidates("open.json") == 0)
            close(fd)
            try await recorder.waitFor("open.json reported at close") { _ in
                recorder.candidates("open.json", origin: .event) == 1
            }
        }
    }
}
