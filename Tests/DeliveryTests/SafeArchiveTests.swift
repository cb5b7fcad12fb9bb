import Delivery
import Foundation
import Testing
import DropboxTestKit

/// Builds tar files with Python's tarfile (hostile ones included) for the extraction tests.
private func makeTar(_ kind: String, at path: String) throws {
    let script = #"""
        import io, sys, tarfile
        kind, path = sys.argv[1], sys.argv[2]
        def add_file(t, name, data=b"x"):
            info = tarfile.TarInfo(name); info.size = len(data); t.addfile(info, io.BytesIO(data))
        def add(t, name, type, linkname=""):
            info = tarfile.TarInfo(name); info.type = type; info.linkname = linkname
            if type == tarfile.DIRTYPE: info.mode = 0o755
            t.addfile(info)
        if kind == "multimember":
            import gzip
            raw = io.BytesIO()
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
                for i in range(3): add_file(t, "m%d.bin" % i, bytes([i]) * 300_000)
            data = raw.getvalue(); half = len(data) // 2
            open(path, "wb").write(gzip.compress(data[:half]) + gzip.compress(data[half:]))
            sys.exit(0)
        with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as t:
            if kind == "good":
                add(t, "top", tarfile.DIRTYPE); add(t, "top/sub", tarfile.DIRTYPE)
                add_file(t, "top/a.txt", b"hello\n"); add_file(t, "./top/sub/b.bin", bytes(range(256)) * 100)
                add(t, "top/sub/link-to-a", tarfile.SYMTYPE, "../a.txt"); add(t, "top/hard-b", tarfile.LNKTYPE, "top/sub/b.bin")
                add_file(t, "second.txt", b"2")
            elif kind == "slip": add_file(t, "ok.txt"); add_file(t, "../escaped.txt")
            elif kind == "nested-slip": add_file(t, "a/b/../../../escaped.txt")
            elif kind == "absolute": add_file(t, "/tmp/delivery-absolute-escape.txt")
            elif kind == "symlink-escape": add(t, "link", tarfile.SYMTYPE, "../.."); add_file(t, "link/escaped.txt")
            elif kind == "symlink-absolute": add(t, "etc", tarfile.SYMTYPE, "/etc"); add_file(t, "etc/evil")
            elif kind == "through-symlink": add(t, "d", tarfile.DIRTYPE); add(t, "s", tarfile.SYMTYPE, "d"); add_file(t, "s/f.txt")
            elif kind == "hardlink-escape": add(t, "h", tarfile.LNKTYPE, "../../etc/passwd")
            elif kind == "hardlink-absolute": add(t, "h", tarfile.LNKTYPE, "/etc/passwd")
            elif kind == "device": add(t, "dev", tarfile.CHRTYPE)
            elif kind == "fifo": add(t, "pipe", tarfile.FIFOTYPE)
            elif kind == "many": [add_file(t, "f%03d" % i) for i in range(50)]
            elif kind == "big": add_file(t, "zeros.bin", bytes(5_000_000))
            elif kind == "random": add_file(t, "random.bin", __import__("os").urandom(1_000_000))
            elif kind == "semantics":
                def entry(name, type=tarfile.REGTYPE, mode=0o644, mtime=1_000_000_000, data=b"", linkname=""):
                    info = tarfile.TarInfo(name); info.type = type; info.mode = mode; info.mtime = mtime
                    info.linkname = linkname; info.size = len(data); t.addfile(info, io.BytesIO(data))
                entry("ro", tarfile.DIRTYPE, 0o555, 1_100_000_000)
                entry("ro/inside.txt", data=b"in a read-only directory\n", mode=0o755, mtime=1_200_000_000)
                entry("implicit/parents/file.txt", data=b"no directory entries\n")
                entry("dup.txt", data=b"first\n"); entry("dup.txt", data=b"second\n", mtime=1_300_000_000)
                entry("was-file", data=b"replaced by a directory"); entry("was-file", tarfile.DIRTYPE, 0o750)
                entry("was-file/child.txt", data=b"child\n")
                entry("empty-dir", tarfile.DIRTYPE); entry("empty-dir", data=b"now a file\n")
                entry("link", tarfile.SYMTYPE, linkname="dup.txt", mtime=1_400_000_000)
                entry("link", tarfile.SYMTYPE, linkname="ro/inside.txt")
                path = "deep"
                for i in range(300):
                    path += "/d%03d" % i
                    entry(path + "/f.txt", data=b"%d\n" % i)
                for i in range(300): entry("wide/w%03d/f.txt" % i, data=b"%d\n" % i)
        """#
    let log = path + ".log"
    let pid = try spawnProcess(["/usr/bin/python3", "-c", script, kind, path], outputFile: log)
    guard reap(pid) == 0 else {
        throw ServiceError(
            description: "tar generation failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    }
}

private func listing(_ dir: String) -> [String] {
    (FileManager.default.enumerator(atPath: dir)?.allObjects as? [String] ?? []).sorted()
}

@Suite("SafeArchive", .tags(.unit))
struct SafeArchiveTests {
    @Test("a normal archive extracts completely, links inside allowed")
    func extractsGoodArchive() throws {
        let dir = try TemporaryDirectory("archive-good")
        defer { dir.remove() }
        try makeTar("good", at: dir.path + "/good.tgz")
        let target = try dir.sub("target")
        let summary = try SafeArchive.extract(dir.path + "/good.tgz", into: target)
        #expect(summary.topLevelNames == ["second.txt", "top"])
        #expect(summary.symlinks == 1)
        #expect(summary.directories == 2)
        #expect(summary.files == 4)
        #expect(summary.bytes == 6 + 25_600 + 1)
        #expect(try String(contentsOfFile: target + "/top/sub/link-to-a", encoding: .utf8) == "hello\n")
        #expect(try Data(contentsOf: URL(fileURLWithPath: target + "/top/hard-b")).count == 25_600)
        #expect(listing(target).allSatisfy { !$0.hasPrefix(".extract") })
        // Extracting again does not overwrite.
        let again = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/good.tgz", into: target)
        }
        #expect(again.code == .fileSystem)
        #expect(listing(target).allSatisfy { !$0.hasPrefix(".extract") })
    }

    @Test(
        "hostile archives are refused and leave nothing behind",
        arguments: [
            "slip", "nested-slip", "absolute", "symlink-escape", "symlink-absolute", "through-symlink",
            "hardlink-escape", "hardlink-absolute", "device", "fifo",
        ])
    func refusesHostileArchive(kind: String) throws {
        let dir = try TemporaryDirectory("archive-\(kind)")
        defer { dir.remove() }
        try makeTar(kind, at: dir.path + "/evil.tgz")
        let target = try dir.sub("deep/er/target")
        let error = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/evil.tgz", into: target)
        }
        #expect(error.code == .unsafeArchiveEntry, "\(error)")
        #expect(listing(target).isEmpty, "partial output removed")
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/deep/er/escaped.txt"))
        #expect(!FileManager.default.fileExists(atPath: dir.path + "/deep/escaped.txt"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/delivery-absolute-escape.txt"))
    }

    @Test("modes, times, duplicate and replacing entries, implicit parents and deep trees extract as tar does")
    func extractionSemantics() throws {
        let dir = try TemporaryDirectory("archive-semantics")
        defer { dir.remove() }
        try makeTar("semantics", at: dir.path + "/s.tgz")
        let target = try dir.sub("target")
        let summary = try SafeArchive.extract(dir.path + "/s.tgz", into: target)
        #expect(
            summary.topLevelNames == ["deep", "dup.txt", "empty-dir", "implicit", "link", "ro", "was-file", "wide"])
        func stat(_ path: String) -> stat {
            var st = Glibc.stat()
            #expect(lstat(target + "/" + path, &st) == 0, "\(path)")
            return st
        }
        let mask = umask(0)
        umask(mask)
        // A read-only directory gets its mode and time after its content was written into it.
        #expect(stat("ro").st_mode & 0o7777 == 0o555 & ~mask)
        #expect(stat("ro").st_mtim.tv_sec == 1_100_000_000)
        #expect(stat("ro/inside.txt").st_mode & 0o7777 == 0o755 & ~mask)
        #expect(stat("ro/inside.txt").st_mtim.tv_sec == 1_200_000_000)
        #expect(
            try String(contentsOfFile: target + "/implicit/parents/file.txt", encoding: .utf8)
                == "no directory entries\n")
        #expect(stat("implicit/parents").st_mode & S_IFMT == S_IFDIR)
        // A later entry replaces an earlier one of the same name (a file, or an empty directory).
        #expect(try String(contentsOfFile: target + "/dup.txt", encoding: .utf8) == "second\n")
        #expect(stat("dup.txt").st_mtim.tv_sec == 1_300_000_000)
        #expect(stat("was-file").st_mode & S_IFMT == S_IFDIR)
        #expect(try String(contentsOfFile: target + "/was-file/child.txt", encoding: .utf8) == "child\n")
        #expect(try String(contentsOfFile: target + "/empty-dir", encoding: .utf8) == "now a file\n")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/link") == "ro/inside.txt")
        // 300 nested and 300 sibling directories (more than the writer keeps open at once).
        var path = target + "/deep"
        for i in 0..<300 { path += "/d" + String(String(i + 1000).dropFirst()) }
        #expect(try String(contentsOfFile: path + "/f.txt", encoding: .utf8) == "299\n")
        #expect(try String(contentsOfFile: target + "/wide/w123/f.txt", encoding: .utf8) == "123\n")
        #expect(summary.files == 7 + 300 + 300 && summary.symlinks == 2)
        chmod(target + "/ro", 0o755)
    }

    @Test("a gzip file of several members (concatenated) extracts whole")
    func multiMemberGzip() throws {
        let dir = try TemporaryDirectory("archive-multimember")
        defer { dir.remove() }
        try makeTar("multimember", at: dir.path + "/m.tgz")
        let target = try dir.sub("target")
        let summary = try SafeArchive.extract(dir.path + "/m.tgz", into: target)
        #expect(summary.files == 3 && summary.bytes == 900_000)
        for i in 0..<3 {
            let data = try Data(contentsOf: URL(fileURLWithPath: target + "/m\(i).bin"))
            #expect(data == Data(repeating: UInt8(i), count: 300_000))
        }
    }

    @Test("tar bombs hit the limits cleanly")
    func limits() throws {
        let dir = try TemporaryDirectory("archive-bomb")
        defer { dir.remove() }
        try makeTar("many", at: dir.path + "/many.tgz")
        try makeTar("big", at: dir.path + "/big.tgz")
        let target = try dir.sub("target")
        let many = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/many.tgz", into: target, limits: ArchiveLimits(maxEntries: 10))
        }
        #expect(many.code == .archiveLimitExceeded)
        let total = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(
                dir.path + "/big.tgz", into: target, limits: ArchiveLimits(maxTotalBytes: 1_000_000))
        }
        #expect(total.code == .archiveLimitExceeded)
        let entry = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(
                dir.path + "/big.tgz", into: target, limits: ArchiveLimits(maxEntryBytes: 4_999_999))
        }
        #expect(entry.code == .archiveLimitExceeded)
        #expect(listing(target).isEmpty)
        #expect(try SafeArchive.extract(dir.path + "/big.tgz", into: target).bytes == 5_000_000)
    }

    @Test("garbage and truncated archives are archiveCorrupt")
    func corrupt() throws {
        let dir = try TemporaryDirectory("archive-corrupt")
        defer { dir.remove() }
        try writeRandomFile(dir.path + "/noise.tgz", size: 10_000)
        let target = try dir.sub("target")
        let noise = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/noise.tgz", into: target)
        }
        #expect(noise.code == .archiveCorrupt)
        try makeTar("big", at: dir.path + "/big.tgz")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/big.tgz"))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: dir.path + "/half.tgz"))
        let half = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/half.tgz", into: target)
        }
        #expect(half.code == .archiveCorrupt)
        #expect(listing(target).isEmpty)
    }

    @Test("a flipped byte in a gzip'd tar is caught by the gzip CRC check", arguments: ["payload", "trailer"])
    func gzipCRC(place: String) throws {
        let dir = try TemporaryDirectory("archive-gzip-crc")
        defer { dir.remove() }
        try makeTar("random", at: dir.path + "/ok.tgz")
        var data = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/ok.tgz"))
        // Incompressible data is stored verbatim by deflate: a flip there decompresses "fine" but wrongly.
        let index = place == "payload" ? data.count / 2 : data.count - 6
        data[index] ^= 0x20
        try data.write(to: URL(fileURLWithPath: dir.path + "/bad.tgz"))
        let target = try dir.sub("target")
        let error = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/bad.tgz", into: target)
        }
        #expect(error.code == .archiveCorrupt)
        #expect(error.message.contains("CRC"))
        #expect(listing(target).isEmpty)
        #expect(try SafeArchive.extract(dir.path + "/ok.tgz", into: target).bytes == 1_000_000)
    }

    @Test("createTar round-trips a tree (gzip and plain)", arguments: [true, false])
    func createTarRoundTrip(gzip: Bool) throws {
        let dir = try TemporaryDirectory("archive-create")
        defer { dir.remove() }
        let source = try dir.sub("my.ms")
        try FileManager.default.createDirectory(atPath: source + "/table.f0", withIntermediateDirectories: true)
        let big = try writeRandomFile(source + "/table.f0/data", size: 2_000_001)
        try Data("meta".utf8).write(to: URL(fileURLWithPath: source + "/table.info"))
        try FileManager.default.createSymbolicLink(atPath: source + "/link", withDestinationPath: "table.info")
        let tar = dir.path + (gzip ? "/out.tgz" : "/out.tar")
        let size = try SafeArchive.createTar(of: source, at: tar, gzip: gzip)
        #expect(size == Int64(FileManager.default.contentsOfFile(tar).count))
        if !gzip { #expect(size > 2_000_001) }
        let target = try dir.sub("extracted")
        let summary = try SafeArchive.extract(tar, into: target)
        #expect(summary.topLevelNames == ["my.ms"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: target + "/my.ms/table.f0/data")) == big)
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: target + "/my.ms/link") == "table.info")
    }
}

extension FileManager {
    fileprivate func contentsOfFile(_ path: String) -> Data { contents(atPath: path) ?? Data() }
}
