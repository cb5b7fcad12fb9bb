import Delivery
import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

/// A pipeline CASA unpacks caltables and flag versions itself: every hostile archive of the shared table
/// (tests/data/malicious-archives.json, also run against SafeArchive and casa_steps.safe_extract) staged as a
/// product must be refused before it runs, with nothing written outside the working area.
@Suite(
    "Pipeline CASA: calibration tarballs checked first", .serialized, .timeLimit(.minutes(3)), .tags(.integration),
    .selected(.integration))
struct PipelineArchiveCheckTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static let cases: [(name: String, limits: [String: Int64])] = {
        guard let data = FileManager.default.contents(atPath: repository + "/tests/data/malicious-archives.json"),
            let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let list = root["cases"] as? [[String: Any]]
        else { return [] }
        return list.map {
            (
                $0["name"] as? String ?? "?",
                ($0["limits"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.int64Value }
            )
        }
    }()

    static func run(_ argv: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// Every path under `root` but `excluded`.
    static func listing(_ root: String, excluding excluded: String) -> Set<String> {
        Set(
            ((FileManager.default.enumerator(atPath: root)?.allObjects as? [String]) ?? []).filter {
                !($0 == excluded || $0.hasPrefix(excluded + "/"))
            })
    }

    @Test func theTableIsThere() {
        #expect(Self.cases.count >= 20)
    }

    @Test(arguments: cases.map(\.name))
    func everyHostileArchiveIsRefusedBeforeCASA(name: String) throws {
        let dir = try CASAFixtures.temporaryDirectory("pipeline-archive-\(name)")
        let products = dir + "/mous/products"
        let working = dir + "/mous/working"
        try FileManager.default.createDirectory(atPath: products, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: working, withIntermediateDirectories: true)
        try #require(
            try Self.run(["/usr/bin/python3", Self.repository + "/scripts/make-malicious-archives.py", dir, name]) == 0)
        let tarball = "uid___A001_X1_X1.session_1.caltables.tgz"
        try FileManager.default.moveItem(atPath: dir + "/\(name).tgz", toPath: products + "/" + tarball)
        let limits = Self.cases.first { $0.name == name }!.limits
        var configured = ArchiveLimits()
        if let v = limits["maxEntries"] { configured.maxEntries = Int(v) }
        if let v = limits["maxTotalBytes"] { configured.maxTotalBytes = v }
        if let v = limits["maxEntryBytes"] { configured.maxEntryBytes = v }
        let product = MousRecord.ProductFile(
            fileClass: .calibration,
            file: ArchiveFile(ngasFileId: tarball, size: 0, checksum: nil, checksumVariant: nil))
        let before = Self.listing(dir, excluding: "mous/working/.archive-check")
        let error = try #require(throws: RestoreError.self) {
            try PipelineArchiveCheck.check(
                products: products, limits: CASAArchiveLimits(limits: configured, products: [product]),
                scratch: working + "/.archive-check")
        }
        #expect(error.message.contains(tarball), "\(error)")
        #expect(error.step == .casa)
        #expect(!FileSystemSteps.exists(working + "/.archive-check"), "the scratch directory is removed")
        #expect(Self.listing(dir, excluding: "mous/working/.archive-check") == before, "nothing written anywhere else")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/dropbox-malicious-absolute.txt"))
    }

    /// The table's accepted archives (hard links to a file extracted earlier) pass the check, as
    /// `casa_steps.safe_extract` accepts them: one rule on both sides.
    @Test func acceptedArchivesOfTheTablePass() throws {
        let data = try #require(
            FileManager.default.contents(atPath: Self.repository + "/tests/data/malicious-archives.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let accepted = try #require(root["accepted"] as? [[String: Any]])
        #expect(!accepted.isEmpty)
        for name in accepted.compactMap({ $0["name"] as? String }) {
            let dir = try CASAFixtures.temporaryDirectory("pipeline-archive-accepted-\(name)")
            let products = dir + "/products"
            let working = dir + "/working"
            try FileManager.default.createDirectory(atPath: products, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: working, withIntermediateDirectories: true)
            try #require(
                try Self.run(["/usr/bin/python3", Self.repository + "/scripts/make-malicious-archives.py", dir, name])
                    == 0)
            let tarball = "uid___A001_X1_X1.session_1.caltables.tgz"
            try FileManager.default.moveItem(atPath: dir + "/\(name).tgz", toPath: products + "/" + tarball)
            let product = MousRecord.ProductFile(
                fileClass: .calibration,
                file: ArchiveFile(ngasFileId: tarball, size: 0, checksum: nil, checksumVariant: nil))
            let checked = try PipelineArchiveCheck.check(
                products: products, limits: CASAArchiveLimits(limits: ArchiveLimits(), products: [product]),
                scratch: working + "/.archive-check")
            #expect(checked == [tarball], "\(name)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: working).isEmpty)
        }
    }

    @Test func genuineTarballsPassAndLeaveNothingBehind() throws {
        let dir = try CASAFixtures.temporaryDirectory("pipeline-archive-ok")
        let products = dir + "/products"
        let working = dir + "/working"
        try FileManager.default.createDirectory(atPath: products + "/x.ms.bcal.tbl", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: working, withIntermediateDirectories: true)
        try Data("table".utf8).write(to: URL(fileURLWithPath: products + "/x.ms.bcal.tbl/table.f0"))
        let tarball = "uid___A001_X1_X1.session_1.caltables.tgz"
        try #require(
            try Self.run(["/usr/bin/tar", "-czf", products + "/" + tarball, "-C", products, "x.ms.bcal.tbl"]) == 0)
        let products0 = [
            MousRecord.ProductFile(
                fileClass: .calibration,
                file: ArchiveFile(ngasFileId: tarball, size: 200, checksum: nil, checksumVariant: nil)),
            MousRecord.ProductFile(
                fileClass: .calibration,
                file: ArchiveFile(
                    ngasFileId: "absent.ms.flagversions.tgz", size: 200, checksum: nil, checksumVariant: nil)),
        ]
        let checked = try PipelineArchiveCheck.check(
            products: products, limits: CASAArchiveLimits(limits: ArchiveLimits(), products: products0),
            scratch: working + "/.archive-check")
        #expect(checked == [tarball])
        #expect(try FileManager.default.contentsOfDirectory(atPath: working).isEmpty)
    }
}
