import Foundation
import Glibc
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    @Suite(.tags(.integration), .selected(.integration)) struct Overflow {
        static let queueLimitPath = "/proc/sys/fs/inotify/max_queued_events"

        /// With the consumer not reading, more files than the kernel queue holds: the kernel drops events and says
        /// `IN_Q_OVERFLOW`; the watcher reports `.overflow`, rescans, and every file is reported.
        @Test func overflowIsReportedAndTheRescanFindsEveryFile() async throws {
            let bufferLimit = 16
            // The kernel's queue limit is a machine-wide setting; a test never changes it, so the burst is sized
            // from the limit as it is (16384 by default) and written to tmpfs, where that takes about a second.
            let queue = try Self.readQueueLimit()
            let parent =
                FileManager.default.fileExists(atPath: "/dev/shm")
                ? "/dev/shm" : FileManager.default.temporaryDirectory.path
            let directory = try TemporaryDirectory(parent: parent)
            defer { directory.remove() }
            let configuration = WatcherConfiguration(
                directory: directory.path, mode: .inotify, eventBufferLimit: bufferLimit)
            let watcher = try DirectoryWatcher(configuration)
            defer { watcher.stop() }
            let created = names("burst", count: bufferLimit + queue + 2000)

            for name in created { try Writer.write(directory.file(name), "{}") }  // nobody is reading

            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("overflow", timeout: .seconds(30)) { $0.contains(.overflow) }
            try await recorder.waitFor("overflow rescan", timeout: .seconds(30)) {
                $0.contains(.rescanCompleted(reason: .overflow, names: created.count))
            }
            let reported = recorder.candidateNames
            #expect(reported == Set(created))
            func reportedByEvent() -> Set<String> { recorder.candidateNames(origin: .event) }
            #expect(watcher.statistics.overflows >= 1)
            try await waitUntil("rescan-only finds counted") { watcher.statistics.rescanOnlyFinds > 0 }
            // Counted: names only the rescan reported (after its one-second grace period). Events the kernel still
            // held when the consumer started reading may arrive after the rescan, so the names reported by an
            // event are read again on every poll rather than once.
            try await waitUntil("every rescan-only find counted") {
                watcher.statistics.rescanOnlyFinds == created.count - reportedByEvent().count
            }
            let byEvent = reportedByEvent()
            #expect(byEvent.count < created.count, "the kernel must have dropped events")
            #expect(!byEvent.isEmpty, "the queued events must still be delivered")
        }

        static func readQueueLimit() throws -> Int {
            let text = try String(contentsOfFile: queueLimitPath, encoding: .utf8)
            return try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }
}
