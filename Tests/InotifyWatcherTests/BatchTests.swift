import Foundation
import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    /// ``DirectoryWatcher/nextBatch(limit:)``: what is already buffered comes in one batch, never more than the limit.
    @Suite(.tags(.integration), .selected(.integration)) struct Batches {
        @Test func theStartRescanArrivesAsBatchesWithinTheLimit() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let names = (0..<10).map { "r\($0).json" }
            for name in names { try Writer.write(directory.file(name), "{}") }
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path))
            defer { watcher.stop() }
            // The start rescan has listed all ten before `init` returned: they are buffered behind each other.
            let first = try #require(await watcher.nextBatch(limit: 4))
            #expect(first.count == 4)
            var seen = Set(first.compactMap(\.candidateName))
            while seen.count < names.count {
                let batch = try #require(await watcher.nextBatch(limit: 100))
                #expect(!batch.isEmpty && batch.count <= 100)
                seen.formUnion(batch.compactMap(\.candidateName))
            }
            #expect(seen == Set(names))
        }

        @Test func aStoppedWatcherEndsTheBatches() async throws {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let watcher = try DirectoryWatcher(WatcherConfiguration(directory: directory.path))
            watcher.stop()
            #expect(await watcher.nextBatch() == nil)
        }
    }
}

extension WatchEvent {
    fileprivate var candidateName: String? {
        if case .candidate(let name, _) = self { name } else { nil }
    }
}
