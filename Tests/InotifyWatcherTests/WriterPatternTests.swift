import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    /// The writer traces of the reference (§3.1): each must yield a candidate for the final name.
    @Suite(.tags(.integration), .selected(.integration)) struct WriterPatterns {
        @Test func slowInPlaceWriterIsReportedAtEachClose() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path, mode: .inotify))
            defer { watcher.stop() }
            #expect(watcher.effectiveMode == .inotify)
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }

            try Writer.write(directory.file("request.json"), #"{"mous": "uid://A001/X1"#)
            try await recorder.waitFor("candidate after the first close") { _ in
                recorder.candidates("request.json", origin: .event) >= 1
            }
            #expect(recorder.candidates("request.json", origin: .event) == 1)

            try Writer.write(directory.file("request.json"), #"/X2"}"#, append: true)
            try await recorder.waitFor("candidate after the second close") { _ in
                recorder.candidates("request.json", origin: .event) >= 2
            }
            #expect(recorder.candidateNames == ["request.json"])
            #expect(watcher.statistics.events == 2)
        }

        @Test(arguments: [true, false])
        func rsyncStyleRenameReportsTheFinalName(dropsDotFiles: Bool) async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let filter = NameFilter(ignoresTemporaryNames: dropsDotFiles)
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory.path, mode: .inotify, include: filter.accepts))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)
            try await recorder.waitFor("start rescan") { $0.contains(.rescanCompleted(reason: .start, names: 0)) }

            let temporary = ".request.json.Xa81Qz"
            try Writer.write(directory.file(temporary), #"{"mous": "uid://A001/X1/X2"}"#)
            try Writer.rename(directory.file(temporary), directory.file("request.json"))
            try await recorder.waitFor("MOVED_TO candidate for the final name") { _ in
                recorder.candidates("request.json", origin: .event) == 1
            }
            // Events arrive in order, so the temporary name's CLOSE_WRITE has been handled by now.
            #expect(recorder.candidates(temporary) == (dropsDotFiles ? 0 : 1))
            let names = recorder.candidateNames
            #expect(names == (dropsDotFiles ? ["request.json"] : ["request.json", temporary]))
        }

        @Test func sameFilesystemMoveAndSedStyleReplacementReportTheFinalName() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let outside = try TemporaryDirectory()
            defer { outside.remove() }
            let watcher = try DirectoryWatcher(
                WatcherConfiguration(directory: directory.path, mode: .inotify, include: NameFilter().accepts))
            defer { watcher.stop() }
            let recorder = EventRecorder(watcher)

            try Writer.write(outside.file("moved.json"), "{}")
            try Writer.rename(outside.file("moved.json"), directory.file("moved.json"))
            try Writer.write(directory.file("sedAb12Cd"), "{}")  // sed -i's temporary name: no dot
            try Writer.rename(directory.file("sedAb12Cd"), directory.file("edited.json"))
            try await recorder.waitFor("both final names") { _ in
                recorder.candidates("moved.json", origin: .event) == 1
                    && recorder.candidates("edited.json", origin: .event) == 1
            }
            #expect(recorder.candidateNames == ["moved.json", "edited.json"])
        }
    }
}
