import Delivery
import Foundation
import Synchronization
import Testing
import DropboxTestKit

private struct Manifest: Decodable {
    var name: String
    var format: PublishFormat
    var totalBytes: Int64
    var files: [PublishedFile]
}

private func sha256(_ data: Data) -> String {
    var hash = SHA256()
    hash.update(data)
    return hash.hexDigest()
}

/// New random bytes written over `path` in place (same inode, as CASA updates a table file).
private func overwriteInPlace(_ path: String, size: Int) {
    let bytes = (0..<size).map { _ in UInt8.random(in: 0...255) }
    let fd = open(path, O_WRONLY | O_TRUNC)
    #expect(fd >= 0)
    #expect(bytes.withUnsafeBytes { write(fd, $0.baseAddress, size) } == size)
    close(fd)
}

private func mode(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions]) as? Int) ?? -1
}

@Suite("Publisher", .serialized, .tags(.integration), .selected(.integration))
struct PublisherTests {
    @Test("SHA-256 known answers and agreement with sha256sum")
    func sha256Vectors() throws {
        #expect(sha256(Data()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(sha256(Data("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            sha256(Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        var million = SHA256()
        let chunk = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { million.update(chunk) }
        #expect(million.hexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        let dir = try TemporaryDirectory("sha")
        defer { dir.remove() }
        try writeRandomFile(dir.path + "/r", size: 1_234_567)
        let pid = try spawnProcess(["/usr/bin/sha256sum", dir.path + "/r"], outputFile: dir.path + "/out")
        #expect(reap(pid) == 0)
        let reference = try String(contentsOfFile: dir.path + "/out", encoding: .utf8).prefix(64)
        #expect(try SHA256.ofFile(dir.path + "/r") == String(reference))
    }

    /// A small measurement-set-like tree plus a loose file.
    private func makeItems(in dir: String) throws -> (ms: String, log: String) {
        let ms = dir + "/uid___A002_X1_X1.ms"
        try FileManager.default.createDirectory(atPath: ms + "/ANTENNA", withIntermediateDirectories: true)
        try writeRandomFile(ms + "/table.f0", size: 700_000)
        try writeRandomFile(ms + "/ANTENNA/table.f1", size: 1_000)
        try Data().write(to: URL(fileURLWithPath: ms + "/table.lock"))
        let log = dir + "/casa-20240101.log"
        try Data("INFO all fine\n".utf8).write(to: URL(fileURLWithPath: log))
        return (ms, log)
    }

    @Test("directory format: files, sizes, sha256, MANIFEST, permissions", arguments: ["same-fs", "cross-fs"])
    func publishDirectory(layout: String) throws {
        let dir = try TemporaryDirectory("publish")
        defer { dir.remove() }
        // /dev/shm is tmpfs: a different file system from the temporary directory, so items get copied.
        let sourceRoot = layout == "cross-fs" ? "/dev/shm/delivery-publish-\(UUID().uuidString)" : try dir.sub("src")
        try FileManager.default.createDirectory(atPath: sourceRoot, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: sourceRoot) }
        let (ms, log) = try makeItems(in: sourceRoot)
        let area = try dir.sub("area")
        let result = try Publisher.publish(
            [ms, log], to: area, name: "2023.1.00042.S_uid___A001_X1_X2", format: .directory)
        #expect(result.path == area + "/2023.1.00042.S_uid___A001_X1_X2")
        #expect(
            result.files.map(\.relativePath) == [
                "casa-20240101.log", "uid___A002_X1_X1.ms/ANTENNA/table.f1", "uid___A002_X1_X1.ms/table.f0",
                "uid___A002_X1_X1.ms/table.lock",
            ])
        for file in result.files {
            let data = try Data(contentsOf: URL(fileURLWithPath: result.path + "/" + file.relativePath))
            #expect(Int64(data.count) == file.size)
            #expect(sha256(data) == file.sha256)
            #expect(mode(result.path + "/" + file.relativePath) == 0o640)
        }
        #expect(result.totalBytes == 700_000 + 1_000 + 14)
        #expect(mode(result.path + "/uid___A002_X1_X1.ms") == 0o750)
        let manifest = try JSONDecoder().decode(
            Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: result.path + "/MANIFEST.json")))
        #expect(manifest.files == result.files)
        #expect(manifest.totalBytes == result.totalBytes)
        #expect(try FileManager.default.contentsOfDirectory(atPath: area) == ["2023.1.00042.S_uid___A001_X1_X2"])
        // Sources stay in place.
        #expect(FileManager.default.fileExists(atPath: ms + "/table.f0"))
        // Never overwritten.
        let again = try #require(throws: DeliveryError.self) {
            try Publisher.publish([log], to: area, name: "2023.1.00042.S_uid___A001_X1_X2", format: .directory)
        }
        #expect(again.code == .publishFailed)
    }

    @Test("files flushed ahead: reused when provably unchanged, hashed and synced again when written since")
    func flushAhead() throws {
        let dir = try TemporaryDirectory("publish-flush")
        defer { dir.remove() }
        let (ms, log) = try makeItems(in: try dir.sub("src"))
        let old = timeval(tv_sec: time(nil) - 30, tv_usec: 123_456)
        let files = [ms + "/table.f0", ms + "/ANTENNA/table.f1", ms + "/table.lock"]
        for file in files { #expect(utimes(file, [old, old]) == 0) }
        // The log keeps its fresh modification time: too recent to tell a later write, so not reusable.
        let durable = FlushAhead.flush([ms, log])
        #expect(durable.count == 3)
        // Written after the flush (new content, same size): its time moves, so the publisher hashes it again.
        overwriteInPlace(ms + "/ANTENNA/table.f1", size: 1_000)
        // Rewritten and its time set back to the recorded one (what DurableFiles assumes nobody does): the
        // recorded digest is used, which shows the flush's digest is what the publisher takes for unchanged files.
        let forgedBefore = try SHA256.ofFile(ms + "/table.f0")
        overwriteInPlace(ms + "/table.f0", size: 700_000)
        #expect(utimes(ms + "/table.f0", [old, old]) == 0)
        let result = try Publisher.publish(
            [ms, log], to: try dir.sub("area"), name: "flushed", format: .directory, durable: durable)
        for file in result.files {
            let data = try Data(contentsOf: URL(fileURLWithPath: result.path + "/" + file.relativePath))
            if file.relativePath.hasSuffix("table.f0") {
                #expect(file.sha256 == forgedBefore)
                #expect(sha256(data) != forgedBefore)
            } else {
                #expect(sha256(data) == file.sha256, "\(file.relativePath)")
            }
        }
        #expect(FlushAhead.flush([dir.path + "/missing"]).count == 0)
    }

    @Test("move mode renames items into the publication")
    func publishMove() throws {
        let dir = try TemporaryDirectory("publish-move")
        defer { dir.remove() }
        let (ms, log) = try makeItems(in: try dir.sub("src"))
        let area = try dir.sub("area")
        let result = try Publisher.publish([ms, log], to: area, name: "moved", format: .directory, move: true)
        #expect(!FileManager.default.fileExists(atPath: ms))
        #expect(result.files.count == 4)
        #expect(FileManager.default.fileExists(atPath: result.path + "/uid___A002_X1_X1.ms/table.f0"))
    }

    @Test("tar format: one tar whose sha256 is listed and whose content round-trips")
    func publishTar() throws {
        let dir = try TemporaryDirectory("publish-tar")
        defer { dir.remove() }
        let (ms, log) = try makeItems(in: try dir.sub("src"))
        let area = try dir.sub("area")
        let result = try Publisher.publish([ms, log], to: area, name: "delivery1", format: .tar)
        #expect(result.files.map(\.relativePath) == ["delivery1.tar"])
        let tar = try Data(contentsOf: URL(fileURLWithPath: result.path + "/delivery1.tar"))
        #expect(result.files[0].size == Int64(tar.count))
        #expect(result.files[0].sha256 == sha256(tar))
        let out = try dir.sub("out")
        let summary = try SafeArchive.extract(result.path + "/delivery1.tar", into: out)
        #expect(summary.topLevelNames == ["casa-20240101.log", "uid___A002_X1_X1.ms"])
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: out + "/uid___A002_X1_X1.ms/table.f0"))
                == Data(contentsOf: URL(fileURLWithPath: ms + "/table.f0")))
    }

    @Test("modes, generated files and the staging tag; tgz round-trips under its archive name")
    func modesGeneratedAndTgz() throws {
        let dir = try TemporaryDirectory("publish-modes")
        defer { dir.remove() }
        let (ms, log) = try makeItems(in: try dir.sub("src"))
        let area = try dir.sub("area")
        let seen = Mutex<[String]>([])
        let result = try Publisher.publish(
            [ms, log], to: area, name: "0123abcd", format: .directory,
            modes: PublishModes(directory: 0o755, file: 0o644),
            stagingTag: "job-1",
            generated: { files in
                seen.withLock { $0 = files.map(\.relativePath) }
                return [GeneratedFile(name: "README.txt", data: Array("\(files.count) files\n".utf8))]
            })
        // The generator saw every placed file; what it wrote is listed, hashed and has the file mode.
        #expect(
            seen.withLock { $0 } == [
                "casa-20240101.log", "uid___A002_X1_X1.ms/ANTENNA/table.f1", "uid___A002_X1_X1.ms/table.f0",
                "uid___A002_X1_X1.ms/table.lock",
            ])
        let readme = try #require(result.files.first { $0.relativePath == "README.txt" })
        #expect(try String(contentsOfFile: result.path + "/README.txt", encoding: .utf8) == "4 files\n")
        #expect(readme.sha256 == sha256(Data("4 files\n".utf8)))
        for file in result.files { #expect(mode(result.path + "/" + file.relativePath) == 0o644) }
        #expect(mode(result.path) == 0o755)
        #expect(mode(result.path + "/uid___A002_X1_X1.ms/ANTENNA") == 0o755)
        #expect(mode(result.path + "/MANIFEST.json") == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: area) == ["0123abcd"])

        // A generated file may not replace an item.
        #expect(throws: DeliveryError.self) {
            try Publisher.publish(
                [log], to: area, name: "clash", format: .directory,
                generated: { _ in [GeneratedFile(name: "casa-20240101.log", data: [])] })
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: area) == ["0123abcd"])

        let tgz = try Publisher.publish(
            [ms, log], to: area, name: "feed", format: .tgz, archiveName: "uid___A001_X1_X2")
        #expect(tgz.files.map(\.relativePath) == ["uid___A001_X1_X2.tgz"])
        let bytes = try Data(contentsOf: URL(fileURLWithPath: tgz.path + "/uid___A001_X1_X2.tgz"))
        #expect(bytes.prefix(2) == Data([0x1f, 0x8b]))
        let out = try dir.sub("out")
        let summary = try SafeArchive.extract(tgz.path + "/uid___A001_X1_X2.tgz", into: out)
        #expect(summary.topLevelNames == ["casa-20240101.log", "uid___A002_X1_X1.ms"])
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: out + "/uid___A002_X1_X1.ms/table.f0"))
                == Data(contentsOf: URL(fileURLWithPath: ms + "/table.f0")))
    }

    @Test("no partial publication is ever visible under the final name")
    func atomicity() async throws {
        let dir = try TemporaryDirectory("publish-atomic")
        defer { dir.remove() }
        let src = try dir.sub("src")
        for i in 0..<40 { try writeRandomFile(src + "/file\(i)", size: 200_000) }
        let area = try dir.sub("area")
        let final = area + "/big"
        let publishing = Task.detached {
            try Publisher.publish([src], to: area, name: "big", format: .directory)
        }
        var observations = 0
        var violations = 0
        while true {
            if FileManager.default.fileExists(atPath: final) {
                // Visible means complete: manifest present and all 40 files there.
                let names = (try? FileManager.default.contentsOfDirectory(atPath: final + "/src")) ?? []
                if !FileManager.default.fileExists(atPath: final + "/MANIFEST.json") || names.count != 40 {
                    violations += 1
                }
                break
            }
            observations += 1
            try await Task.sleep(for: .milliseconds(1))
        }
        let result = try await publishing.value
        #expect(violations == 0)
        #expect(observations > 0)
        #expect(result.files.count == 40)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: area)
        #expect(leftovers == ["big"])
    }

    @Test("bad names and missing items fail cleanly without leftovers")
    func failures() throws {
        let dir = try TemporaryDirectory("publish-fail")
        defer { dir.remove() }
        let area = try dir.sub("area")
        let (_, log) = try makeItems(in: try dir.sub("src"))
        for name in ["", "../x", "a/b", ".hidden", "x\ny"] {
            let error = try #require(throws: DeliveryError.self) {
                try Publisher.publish([log], to: area, name: name, format: .directory)
            }
            #expect(error.code == .publishFailed)
        }
        let missing = try #require(throws: DeliveryError.self) {
            try Publisher.publish([log, dir.path + "/nope"], to: area, name: "p", format: .directory)
        }
        #expect(missing.code == .publishFailed)
        #expect(try FileManager.default.contentsOfDirectory(atPath: area).isEmpty)
    }
}
