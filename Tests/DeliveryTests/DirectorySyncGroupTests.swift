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

    @Test func severalFilesAreReplacedInOrderAndAPreconditionStopsTheRest() throws {
        let dir = try TemporaryDirectory("sync-several")
        defer { dir.remove() }
        let first = dir.path + "/first.json"
        let second = dir.path + "/second.json"
        try AtomicFile.write(Data("old".utf8), to: second)
        #expect(try AtomicFile.write([.init(Data("1".utf8), at: first), .init(Data("2".utf8), at: second)]))
        #expect(FileManager.default.contents(atPath: first) == Data("1".utf8))
        #expect(FileManager.default.contents(atPath: second) == Data("2".utf8))

        // Asked before each rename: a fence lost after the first replacement leaves the second file untouched.
        var asked = 0
        let replaced = try AtomicFile.write(
            [.init(Data("1b".utf8), at: first, mode: 0o600), .init(Data("2b".utf8), at: second)],
            if: {
                asked += 1
                return asked == 1
            })
        #expect(!replaced)
        #expect(asked == 2)
        #expect(FileManager.default.contents(atPath: first) == Data("1b".utf8))
        #expect(FileManager.default.contents(atPath: second) == Data("2".utf8))
        let mode = try FileManager.default.attributesOfItem(atPath: first)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty)
    }

    @Test func aCreationFollowedByAReplacementWritesNothingWhenTheFirstExists() throws {
        let dir = try TemporaryDirectory("sync-create-then")
        defer { dir.remove() }
        let record = dir.path + "/record.json"
        let output = dir.path + "/output.json"
        let group = DirectorySyncGroup()
        #expect(
            try AtomicFile.create(
                .init(Data("r".utf8), at: record), then: .init(Data("o".utf8), at: output), group: group))
        #expect(FileManager.default.contents(atPath: record) == Data("r".utf8))
        #expect(FileManager.default.contents(atPath: output) == Data("o".utf8))
        #expect(group.pendingDirectories == [dir.path])
        try group.commit()

        #expect(try !AtomicFile.create(.init(Data("r2".utf8), at: record), then: .init(Data("o2".utf8), at: output)))
        #expect(FileManager.default.contents(atPath: record) == Data("r".utf8))
        #expect(FileManager.default.contents(atPath: output) == Data("o".utf8))
        let left = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix(".") }
        #expect(left.isEmpty)
    }
}
