import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    /// The kernel refusing inotify (`EMFILE` from `inotify_init1`, `ENOSPC` from `inotify_add_watch`): the watcher
    /// says so precisely, polls meanwhile, and switches back to inotify once the limit allows it.
    ///
    /// The limits are per user namespace, so the test runs itself again in a new one (`unshare --user
    /// --map-root-user`, util-linux) where it may set `/proc/sys/user/max_inotify_*` to 0 without touching anyone else.
    @Suite(.tags(.integration), .selected(.integration)) struct InotifyRefused {
        static let childVariable = "INOTIFY_WATCHER_TEST_CHILD"

        enum Limit: String, CaseIterable {
            case instances = "max_inotify_instances"
            case watches = "max_inotify_watches"

            var errnoName: String { self == .instances ? "EMFILE" : "ENOSPC" }
            var sysctlName: String { self == .instances ? "max_user_instances" : "max_user_watches" }
        }

        @Test(arguments: Limit.allCases)
        func refusedInotifyFallsBackToPollingAndRecovers(limit: Limit) async throws {
            if let request = ProcessInfo.processInfo.environment[Self.childVariable] {
                // In the child: run only the case the parent asked for.
                let (wanted, directory) = try #require(
                    request.split(separator: "=", maxSplits: 1).map(String.init).pair)
                guard wanted == limit.rawValue else { return }
                try await Self.scenario(limit: limit, directory: directory)
                try Writer.write(directory + "/" + Self.marker(limit), "done")
            } else {
                try Self.runInNewUserNamespace(limit: limit)
            }
        }

        /// Runs inside the new user namespace.
        static func scenario(limit: Limit, directory: String) async throws {
            let limitPath = "/proc/sys/user/" + limit.rawValue
            try "0\n".write(toFile: limitPath, atomically: false, encoding: .utf8)
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory, mode: .inotify, pollInterval: .milliseconds(20)))
            defer { watcher.stop() }
            #expect(watcher.effectiveMode == .polling)
            #expect(!watcher.statistics.watching)
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") {
                $0.contains { if case .rescanCompleted(.start, _) = $0 { true } else { false } }
            }
            guard case .watchLost(let reason) = recorder.events.first else {
                Issue.record("the first event must be watchLost, got \(recorder.events)")
                return
            }
            #expect(reason.contains(limit.errnoName) && reason.contains(limit.sysctlName), "\(reason)")
            #expect(watcher.statistics.lostReason == reason)

            try Writer.write(directory + "/while-refused.json", "{}")
            try await recorder.waitFor("polling fallback finds the file") { _ in
                recorder.candidates("while-refused.json", origin: .rescan) >= 1
            }
            #expect(recorder.events.filter { if case .watchLost = $0 { true } else { false } }.count == 1)

            try "1000\n".write(toFile: limitPath, atomically: false, encoding: .utf8)
            try await recorder.waitFor("watch restored") { $0.contains(.watchRestored) }
            #expect(watcher.effectiveMode == .inotify)
            try Writer.write(directory + "/after.json", "{}")
            try await recorder.waitFor("inotify event after recovery") { _ in
                recorder.candidates("after.json", origin: .event) == 1
            }
        }

        /// Runs this test binary again, filtered to this test, in a new user namespace.
        static func runInNewUserNamespace(limit: Limit) throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = [
                "--user", "--map-root-user", executable, "--testing-library", "swift-testing",
                "--filter", "InotifyWatcherTests.InotifyRefused/refusedInotifyFallsBackToPollingAndRecovers",
            ]
            process.environment = ProcessInfo.processInfo.environment.merging([
                Self.childVariable: limit.rawValue + "=" + directory.path
            ]) { $1 }
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            do {
                try process.run()
            } catch {
                Issue.record("cannot run /usr/bin/unshare (install util-linux): \(error)")
                throw error
            }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "child test run failed:\n\(text)")
            // The child writes the marker only after the whole scenario passed.
            #expect(
                FileManager.default.fileExists(atPath: directory.file(Self.marker(limit))),
                "the child did not complete the \(limit) scenario:\n\(text)")
        }

        static func marker(_ limit: Limit) -> String { "scenario-\(limit.rawValue).done" }
    }
}

extension Array {
    /// The two elements of a two-element array.
    fileprivate var pair: (Element, Element)? { count == 2 ? (self[0], self[1]) : nil }
}
