import Foundation
import Glibc
import InotifyWatcher
import Testing

extension InotifyWatcherTests {
    @Suite struct Overflow {
        static let queueLimitPath = "/proc/sys/fs/inotify/max_queued_events"

        /// With the consumer not reading, more files than the kernel queue holds: the kernel drops events and says
        /// `IN_Q_OVERFLOW`; the watcher reports `.overflow`, rescans, and every file is reported.
        @Test func overflowIsReportedAndTheRescanFindsEveryFile() async throws {
            let bufferLimit = 16
            let originalLimit = try Self.readQueueLimit()
            // Lower the kernel queue just while the watcher's inotify instance is created (the limit is copied at
            // inotify_init time) and restore it at once. Without write access, use the real queue on tmpfs.
            let lowered = 64
            let canLower = access(Self.queueLimitPath, W_OK) == 0
            let directory = try TemporaryDirectory(
                parent: canLower ? FileManager.default.temporaryDirectory.path : "/dev/shm")
            defer { directory.remove() }
            let configuration = WatcherConfiguration(
                directory: directory.path, mode: .inotify, eventBufferLimit: bufferLimit)
            let watcher: DirectoryWatcher
            if canLower {
                try Self.writeQueueLimit(lowered)
                defer { try? Self.writeQueueLimit(Self.restoredValue(originalLimit)) }
                watcher = try DirectoryWatcher(configuration)
            } else {
                watcher = try DirectoryWatcher(configuration)
            }
            defer { watcher.stop() }
            #expect(try Self.readQueueLimit() == Self.restoredValue(originalLimit))
            let queue = canLower ? lowered : originalLimit
            let created = names("burst", count: bufferLimit + queue + (canLower ? 1000 : 2000))

            for name in created { try Writer.write(directory.file(name), "{}") }  // nobody is reading

            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("overflow", timeout: .seconds(30)) { $0.contains(.overflow) }
            try await recorder.waitFor("overflow rescan", timeout: .seconds(30)) {
                $0.contains(.rescanCompleted(reason: .overflow, names: created.count))
            }
            let reported = recorder.candidateNames
            #expect(reported == Set(created))
            let byEvent = Set(created.filter { recorder.candidates($0, origin: .event) > 0 })
            #expect(byEvent.count < created.count, "the kernel must have dropped events")
            #expect(!byEvent.isEmpty, "the queued events must still be delivered")
            #expect(watcher.statistics.overflows >= 1)
            try await waitUntil("rescan-only finds counted") { watcher.statistics.rescanOnlyFinds > 0 }
            // Counted: names only the rescan reported (after its one-second grace period).
            try await waitUntil("every rescan-only find counted") {
                watcher.statistics.rescanOnlyFinds == created.count - byEvent.count
            }
        }

        static func readQueueLimit() throws -> Int {
            let text = try String(contentsOfFile: queueLimitPath, encoding: .utf8)
            return try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        }

        static func writeQueueLimit(_ value: Int) throws {
            try "\(value)\n".write(toFile: queueLimitPath, atomically: false, encoding: .utf8)
        }

        /// The value to put back. If another test on this machine lowered the limit at the same moment we may
        /// have read its temporary value; never leave the machine with a tiny queue.
        static func restoredValue(_ original: Int) -> Int {
            original < 1024 ? 16384 : original
        }
    }
}
