import Delivery
import Foundation
import Testing
import DropboxTestKit

/// ``DirectorySyncGroup``: replacements of a batch are visible and whole at once, and the group's commit is what
/// syncs their directory (once per directory, however many files).
@Suite("Group commit of atomic file writes", .tags(.unit))
struct DirectorySyncGroupTests {
    @Test func aBatchOfReplacementsIsWholeAndCommitsEachDirectoryOnce() throws {
        let dir = try TemporaryDirectory("sync-group")
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.path + "/b", withIntermediateDirectories: true)
        let group = DirectorySyncGroup()
        #expect(group.isEmpty)
        for i in 0..<5 {
            try AtomicFile.write(Data("a\(i)".utf8), to: dir.path + "/a\(i).json", group: group)
        }
        #expect(try AtomicFile.create(Data("b".utf8), at: dir.path + "/b/one.json", group: group))
        #expect(try !AtomicFile.create(Data("again".utf8), at: dir.path + "/b/one.json", group: group))
        // Renamed into place at once (readers see them before the commit), whole, no temporaries left.
        for i in 0..<5 {
            #expect(FileManager.default.contents(atPath: dir.path + "/a\(i).json") == Data("a\(i)".utf8))
        }
        #expect(FileManager.default.contents(atPath: dir.path + "/b/one.json") == Data("b".utf8))
        #expect(group.pendingDirectories == [dir.path, dir.path + "/b"])
        try group.commit()
        #expect(group.isEmpty)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty)
    }

    @Test func aCommitOfAVanishedDirectoryFails() throws {
        let dir = try TemporaryDirectory("sync-group-gone")
        let group = DirectorySyncGroup()
        try AtomicFile.write(Data("x".utf8), to: dir.path + "/x.json", group: group)
        dir.remove()
        #expect(throws: (any Error).self) { try group.commit() }
    }
}
