@testable import Delivery
import Foundation
import Testing
import DropboxTestKit

/// The shared table of hostile archives (tests/data/malicious-archives.json), built into tars by
/// scripts/make-malicious-archives.py; casa/tests/test_safe_extract.py runs the same table against the Python side.
enum MaliciousTable {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path
    static let table = repository + "/tests/data/malicious-archives.json"

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var why: String
        var limits: [String: Int64]
        /// Accepted cases: path → content of what must be extracted.
        var expect: [String: String] = [:]
        var testDescription: String { name }

        var archiveLimits: ArchiveLimits {
            var result = ArchiveLimits()
            if let v = limits["maxEntries"] { result.maxEntries = Int(v) }
            if let v = limits["maxTotalBytes"] { result.maxTotalBytes = v }
            if let v = limits["maxEntryBytes"] { result.maxEntryBytes = v }
            if let v = limits["maxExpansionRatio"] { result.maxExpansionRatio = Double(v) }
            return result
        }
    }

    /// The hostile archives, which every extractor refuses.
    static let cases: [Case] = load("cases")
    /// The archives every extractor must accept (the hard link rule's allowed side).
    static let accepted: [Case] = load("accepted")

    static func load(_ key: String) -> [Case] {
        guard let data = FileManager.default.contents(atPath: table),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let list = root[key] as? [[String: Any]]
        else { return [] }
        return list.map { item in
            Case(
                name: item["name"] as? String ?? "?", why: item["why"] as? String ?? "",
                limits: (item["limits"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.int64Value },
                expect: item["expect"] as? [String: String] ?? [:])
        }
    }

    /// Builds `<name>.tgz` for one case in `directory`.
    static func build(_ name: String, in directory: String) throws {
        let log = directory + "/make-\(name).log"
        let pid = try spawnProcess(
            ["/usr/bin/python3", repository + "/scripts/make-malicious-archives.py", directory, name], outputFile: log)
        guard reap(pid) == 0 else {
            throw ServiceError(
                description:
                    "make-malicious-archives failed: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
        }
    }
}

/// Every path below `root` (not following links) except those under `excluded`, with size and link count.
private func snapshot(_ root: String, excluding excluded: String) -> [String: String] {
    var result: [String: String] = [:]
    var pending = [root]
    while let directory = pending.popLast() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            let path = directory + "/" + name
            if path == excluded { continue }
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            result[path] = "\(st.st_mode) \(st.st_size) \(st.st_nlink)"
            if st.st_mode & S_IFMT == S_IFDIR { pending.append(path) }
        }
    }
    return result
}

@Suite("Malicious archives (shared table)", .tags(.unit))
struct MaliciousArchiveTests {
    @Test("the table is there and names every variant of the campaign")
    func tableLoads() {
        let names = Set(MaliciousTable.cases.map(\.name))
        #expect(
            names.isSuperset(of: [
                "symlink-chain", "symlink-chain-hardlink", "symlink-absolute", "hardlink-to-symlink",
                "write-through-dir-symlink", "setuid-file", "char-device", "fifo", "bomb-ratio",
            ]))
    }

    @Test(
        "every hostile archive is refused with nothing written outside, with openat2 and with the fallback",
        arguments: MaliciousTable.cases, [BeneathResolver.Mode.kernel, .refuseLinkChains])
    func refused(_ item: MaliciousTable.Case, mode: BeneathResolver.Mode) throws {
        if mode == .kernel && !BeneathResolver.kernelHasOpenat2 { return }
        let dir = try TemporaryDirectory("malicious-\(item.name)")
        defer { dir.remove() }
        try MaliciousTable.build(item.name, in: dir.path)
        let target = try dir.sub("outer/inner/target")
        let outside = dir.path + "/outer/inner/outside.txt"
        try "untouched\n".write(toFile: outside, atomically: false, encoding: .utf8)
        let before = snapshot(dir.path, excluding: target)
        let extraction = ArchiveExtraction(
            archivePath: dir.path + "/\(item.name).tgz", staging: target, limits: item.archiveLimits, resolution: mode)
        let error = try #require(throws: DeliveryError.self, "\(item.name): \(item.why)") { try extraction.run() }
        #expect([.unsafeArchiveEntry, .archiveLimitExceeded].contains(error.code), "\(error)")
        #expect(snapshot(dir.path, excluding: target) == before, "nothing written outside the target")
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "untouched\n")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/dropbox-malicious-absolute.txt"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/dropbox-malicious-through-link.txt"))
        // Through the public API the all-or-nothing staging also leaves the target empty.
        let target2 = try dir.sub("outer/inner/target2")
        #expect(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/\(item.name).tgz", into: target2, limits: item.archiveLimits)
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: target2)) ?? ["?"]).isEmpty)
    }

    @Test(
        "the accepted archives extract: hard links share their file and count against the limits as copies",
        arguments: MaliciousTable.accepted, [BeneathResolver.Mode.kernel, .refuseLinkChains])
    func accepted(_ item: MaliciousTable.Case, mode: BeneathResolver.Mode) throws {
        if mode == .kernel && !BeneathResolver.kernelHasOpenat2 { return }
        let dir = try TemporaryDirectory("accepted-\(item.name)")
        defer { dir.remove() }
        try MaliciousTable.build(item.name, in: dir.path)
        let archive = dir.path + "/\(item.name).tgz"
        let target = try dir.sub("target")
        _ = try ArchiveExtraction(archivePath: archive, staging: target, limits: item.archiveLimits, resolution: mode)
            .run()
        #expect(!item.expect.isEmpty)
        var inodes = Set<UInt>()
        for (path, content) in item.expect {
            #expect(try String(contentsOfFile: target + "/" + path, encoding: .utf8) == content, "\(path)")
            var st = stat()
            #expect(lstat(target + "/" + path, &st) == 0)
            inodes.insert(UInt(st.st_ino))
        }
        #expect(inodes.count == 1, "hard links share their file")
        // The case's total limit is exactly the size of the copies: one byte less is refused.
        var tighter = item.archiveLimits
        tighter.maxTotalBytes -= 1
        let target2 = try dir.sub("target2")
        let error = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(archive, into: target2, limits: tighter)
        }
        #expect(error.code == .archiveLimitExceeded, "\(error)")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: target2)) ?? ["?"]).isEmpty)
    }

    @Test(
        "hard links are refused with the reason of the one rule",
        arguments: [
            ("hardlink-to-directory", "'d', which is not a regular file"),
            ("hardlink-before-its-file", "'f.txt', which no earlier entry of the archive extracted"),
            ("hardlink-to-nothing", "'absent.txt', which no earlier entry of the archive extracted"),
            ("hardlink-to-replaced-file", "'f', which is not a regular file"),
            ("hardlink-to-symlink", "'d/l', which is not a regular file"),
            ("hardlink-setuid", "set-user-ID or set-group-ID entries are not allowed"),
            ("hardlink-counted-as-copy", "expands to more than 10000 bytes"),
        ])
    func hardLinkReasons(_ name: String, reason: String) throws {
        let dir = try TemporaryDirectory("hardlink-\(name)")
        defer { dir.remove() }
        try MaliciousTable.build(name, in: dir.path)
        let item = try #require(MaliciousTable.cases.first { $0.name == name })
        let target = try dir.sub("target")
        let error = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/\(name).tgz", into: target, limits: item.archiveLimits)
        }
        #expect("\(error)".contains(reason), "\(error)")
    }

    @Test("the symlink chain is refused at the link that leaves, with the reason")
    func chainReason() throws {
        guard BeneathResolver.kernelHasOpenat2 else { return }
        let dir = try TemporaryDirectory("malicious-chain")
        defer { dir.remove() }
        try MaliciousTable.build("symlink-chain", in: dir.path)
        let target = try dir.sub("target")
        let error = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(dir.path + "/symlink-chain.tgz", into: target)
        }
        #expect(error.code == .unsafeArchiveEntry)
        #expect("\(error)".contains("'t'") && "\(error)".contains("resolves outside"), "\(error)")
    }

    @Test(
        "links that stay inside for real still extract, in both modes",
        arguments: [BeneathResolver.Mode.kernel, .refuseLinkChains])
    func goodLinks(mode: BeneathResolver.Mode) throws {
        if mode == .kernel && !BeneathResolver.kernelHasOpenat2 { return }
        let dir = try TemporaryDirectory("benign-links")
        defer { dir.remove() }
        let script = #"""
            import io, sys, tarfile
            with tarfile.open(sys.argv[1], "w:gz") as t:
                def add(name, type, link="", data=None):
                    i = tarfile.TarInfo(name); i.type = type; i.linkname = link
                    if data is not None: i.size = len(data)
                    t.addfile(i, io.BytesIO(data) if data is not None else None)
                add("ms", tarfile.DIRTYPE); add("ms/table.dat", tarfile.REGTYPE, data=b"data")
                add("ms/sub", tarfile.DIRTYPE); add("ms/sub/up", tarfile.SYMTYPE, "../table.dat")
                add("ms/self", tarfile.SYMTYPE, "."); add("ms/hard", tarfile.LNKTYPE, "ms/table.dat")
            """#
        let pid = try spawnProcess(
            ["/usr/bin/python3", "-c", script, dir.path + "/ok.tgz"], outputFile: dir.path + "/log")
        #expect(reap(pid) == 0)
        let target = try dir.sub("target")
        let summary = try ArchiveExtraction(
            archivePath: dir.path + "/ok.tgz", staging: target, limits: ArchiveLimits(), resolution: mode
        ).run()
        #expect(summary.symlinks == 2)
        #expect(try String(contentsOfFile: target + "/ms/sub/up", encoding: .utf8) == "data")
    }

    @Test("a 3 MB gzip expanding to 3 GiB is refused by ratio without writing it", .timeLimit(.minutes(1)))
    func gigabyteBomb() throws {
        let dir = try TemporaryDirectory("bomb-3g")
        defer { dir.remove() }
        // Streamed: one tar header declaring 3 GiB, then 3073 gzip members of 1 MiB of zeros each (a multi-member
        // gzip file is one stream to every reader), about 1 kB each — 3 MB on disk, 3 GiB + 1 MiB decompressed.
        let script = #"""
            import gzip, sys, tarfile
            info = tarfile.TarInfo("zeros.bin"); info.size = 3 << 30
            member = gzip.compress(bytes(1 << 20), 9)
            with open(sys.argv[1], "wb") as f:
                f.write(gzip.compress(info.tobuf(tarfile.GNU_FORMAT), 9))
                for _ in range(3073): f.write(member)
            """#
        let bomb = dir.path + "/bomb.tgz"
        let pid = try spawnProcess(["/usr/bin/python3", "-c", script, bomb], outputFile: dir.path + "/log")
        #expect(reap(pid) == 0)
        let size = try #require(FileSystem.size(bomb))
        #expect(size > 2_000_000 && size < 4_000_000, "\(size)")
        let target = try dir.sub("target")
        let started = ContinuousClock.now
        let error = try #require(throws: DeliveryError.self) { try SafeArchive.extract(bomb, into: target) }
        #expect(error.code == .archiveLimitExceeded)
        #expect("\(error)".contains("times its size"), "\(error)")
        #expect(ContinuousClock.now - started < .seconds(10), "refused at the header, not after decompressing")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: target)) ?? ["?"]).isEmpty)
        // With the ratio check off and a total limit instead, it is still refused before writing.
        let total = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(
                bomb, into: target, limits: ArchiveLimits(maxTotalBytes: 1 << 30, maxExpansionRatio: 0))
        }
        #expect(total.code == .archiveLimitExceeded)
        FileSystem.remove(bomb)
    }

    @Test("declared sizes are also checked on the decompressed stream")
    func streamRatio() throws {
        let dir = try TemporaryDirectory("bomb-stream")
        defer { dir.remove() }
        // A tiny tar followed by 40 MB of zeros after its end: the declared sizes are nothing, the stream is not.
        let script = #"""
            import gzip, io, sys, tarfile
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as t:
                i = tarfile.TarInfo("a.txt"); i.size = 1; t.addfile(i, io.BytesIO(b"x"))
            with open(sys.argv[1], "wb") as f:
                f.write(gzip.compress(buf.getvalue() + bytes(40 << 20), 9))
            """#
        let bomb = dir.path + "/tail.tgz"
        let pid = try spawnProcess(["/usr/bin/python3", "-c", script, bomb], outputFile: dir.path + "/log")
        #expect(reap(pid) == 0)
        let target = try dir.sub("target")
        let error = try #require(throws: DeliveryError.self) {
            try SafeArchive.extract(
                bomb, into: target, limits: ArchiveLimits(maxExpansionRatio: 100, ratioAllowanceBytes: 1 << 20))
        }
        #expect(error.code == .archiveLimitExceeded, "\(error)")
    }
}
