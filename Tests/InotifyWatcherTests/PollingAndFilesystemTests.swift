import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    @Suite(.tags(.integration), .selected(.integration)) struct PollingAndFilesystems {
        @Test func pollingModeFindsFilesWithoutInotify() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory.path, mode: .polling, pollInterval: .milliseconds(50)))
            defer { watcher.stop() }
            #expect(watcher.effectiveMode == .polling)
            #expect(inotifyDescriptors(watching: directory.path).isEmpty)
            let recorder = EventRecorder(watcher)
            try Writer.write(directory.file("polled.json"), "{}")
            try await recorder.waitFor("candidate from a polling rescan") { _ in
                recorder.candidates("polled.json", origin: .rescan) >= 1
            }
            try await recorder.waitFor("two polling rescans") {
                $0.filter { if case .rescanCompleted(.polling, _) = $0 { true } else { false } }.count >= 2
            }
            #expect(recorder.candidates("polled.json", origin: .event) == 0)
            let statistics = watcher.statistics
            #expect(statistics.events == 0)
            #expect(!statistics.watching)
            #expect(statistics.rescanOnlyFinds == 0)  // not counted in polling mode
        }

        @Test func automaticModeChoosesInotifyOnTmpfs() async throws {
            let directory = try TemporaryDirectory(parent: "/dev/shm")
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path))
            defer { watcher.stop() }
            #expect(watcher.filesystem.typeName == "tmpfs")
            #expect(watcher.effectiveMode == .inotify)
            #expect(watcher.statistics.filesystem == "tmpfs")
            #expect(inotifyDescriptors(watching: directory.path).count == 1)
        }

        @Test(arguments: [
            (0xEF53, "ext4", true), (0x0102_1994, "tmpfs", true), (0x5846_5342, "xfs", true),
            (0x9123_683E, "btrfs", true), (0x794C_7630, "overlayfs", false), (0x6969, "nfs", false),
            (0xFF53_4D42, "cifs", false), (0xFE53_4D42, "smb2", false), (0x517B, "smb", false),
            (0x6573_5546, "fuse", false), (0x0102_1997, "9p", false), (0x00C3_6400, "ceph", false),
        ])
        func magicNumbersMapToFilesystems(magic: Int, name: String, reliable: Bool) {
            let info = FilesystemInfo(magic: magic)
            #expect(info.typeName == name)
            #expect(info.inotifyReliable == reliable)
            #expect(info.magic == magic)
        }

        @Test func unknownFilesystemsArePolled() {
            let info = FilesystemInfo(magic: 0x1234_5678)
            #expect(info.typeName == "unknown(0x12345678)")
            #expect(!info.inotifyReliable)
        }

        @Test func statfsOfRealFilesystemsMatchesTheMountTable() throws {
            #expect(try FilesystemInfo.of(path: "/dev/shm").typeName == "tmpfs")
            #expect(try FilesystemInfo.of(path: "/dev/shm").inotifyReliable)
            let root = try FilesystemInfo.of(path: "/")
            let mounted = try Self.mountedType(at: "/")
            let expected = ["ext2": "ext4", "ext3": "ext4", "overlay": "overlayfs"][mounted] ?? mounted
            #expect(root.typeName == expected, "/ is mounted as \(mounted)")
        }

        @Test func missingOrWrongDirectoriesAreRefused() throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            try Writer.write(directory.file("plain"), "x")
            try FileManager.default.createSymbolicLink(
                atPath: directory.file("link"), withDestinationPath: directory.path)
            #expect(throws: WatcherError.self) { try FilesystemInfo.of(path: directory.file("missing")) }
            for (name, code) in [
                ("missing", WatcherError.Code.directoryNotFound), ("plain", .notADirectory), ("link", .notADirectory),
            ] {
                do {
                    _ = try DirectoryWatcher(WatcherConfiguration(directory: directory.file(name)))
                    Issue.record("watching \(name) must fail")
                } catch {
                    #expect(error.code == code)
                    #expect(error.path == directory.file(name))
                    #expect(error.description.hasPrefix(code.rawValue))
                }
            }
        }

        /// The last mount at `path` in /proc/self/mounts.
        static func mountedType(at path: String) throws -> String {
            let table = try String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)
            let fields = table.split(separator: "\n").map { $0.split(separator: " ") }
            return try #require(fields.last(where: { $0.count > 2 && $0[1] == path }).map { String($0[2]) })
        }
    }
}
