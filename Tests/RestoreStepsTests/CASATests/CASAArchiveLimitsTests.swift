import Delivery
import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

/// The limits the CASA side unpacks caltables and flag versions with: computed once by the agent
/// (``CASAArchiveLimits``), read by the real `casa/casa_steps.py` (`load_archive_limits`), passed by the modular
/// runner as `--archive-limits FILE`.
@Suite(
    "Archive limits of the CASA side", .serialized, .timeLimit(.minutes(2)), .tags(.integration),
    .selected(.integration))
struct CASAArchiveLimitsTests {
    static let configured = ArchiveLimits(
        maxEntries: 500, maxTotalBytes: 1 << 40, maxEntryBytes: 1 << 39, maxExpansionRatio: 50,
        ratioAllowanceBytes: 1 << 20)
    static let caltables = "uid___A001_X1_X1.session_1.caltables.tgz"
    static let flags = "uid___A002_X1_X1.ms.flagversions.tgz"
    static let otherFlags = "uid___A002_X1_X2.ms.flagversions.tgz"
    static let aux = "uid___A001_X1_X1.hifa_calimage.auxproducts.tgz"
    static let rawTar = "uid___A001_X1_X1.products.tar"

    static func product(_ name: String, size: Int64) -> MousRecord.ProductFile {
        MousRecord.ProductFile(
            fileClass: .calibration,
            file: ArchiveFile(ngasFileId: name, size: size, checksum: nil, checksumVariant: nil))
    }

    static let asdmBytes: [String: Int64] = ["uid___A002_X1_X1": 2 << 30]

    static let products = [
        product(caltables, size: 10_000_000), product(flags, size: 2_000), product(otherFlags, size: 2_000),
        product(aux, size: 0),
        product(rawTar, size: 3 << 30),
        product("uid___A002_X1_X1.ms.calapply.txt", size: 3_000),
    ]

    @Test func eachTarballIsBoundedByItsCataloguedSize() {
        let doc = CASAArchiveLimits(limits: Self.configured, products: Self.products, asdmBytes: Self.asdmBytes)
        #expect(doc.limits == Self.configured)
        #expect(
            doc.archives.keys.sorted() == [Self.aux, Self.caltables, Self.flags, Self.otherFlags, Self.rawTar].sorted())
        // Compressed: the expansion bound of the catalogued size (10 MB × 50), never above the configured bounds.
        #expect(doc.archives[Self.caltables]?.maxTotalBytes == 500_000_000)
        #expect(doc.archives[Self.caltables]?.maxEntryBytes == 500_000_000)
        #expect(doc.archives[Self.caltables]?.maxEntries == 500)
        // Flag versions of an EB whose ASDM size is known: twice that plus 64 MiB, no ratio (flags compress
        // beyond any fixed ratio: 2 000 bytes here may genuinely hold far more than 50 × 2 000).
        #expect(doc.archives[Self.flags]?.maxTotalBytes == (4 << 30) + (64 << 20))
        #expect(doc.archives[Self.flags]?.maxEntryBytes == (4 << 30) + (64 << 20))
        #expect(doc.archives[Self.flags]?.maxExpansionRatio == 0)
        // ASDM size unknown: the ratio bound of its own size, here the ratio allowance.
        #expect(doc.archives[Self.otherFlags]?.maxTotalBytes == 1 << 20)
        #expect(doc.archives[Self.otherFlags]?.maxExpansionRatio == 50)
        // Size unknown: the configured limits.
        #expect(doc.archives[Self.aux] == Self.configured)
        // A plain tar expands to about its size: twice that plus 64 MiB.
        #expect(doc.archives[Self.rawTar]?.maxTotalBytes == (6 << 30) + (64 << 20))
        // Never looser than configured.
        let tight = ArchiveLimits(maxTotalBytes: 1_000, maxEntryBytes: 1_000)
        #expect(
            CASAArchiveLimits(limits: tight, products: Self.products).archives[Self.caltables]?.maxTotalBytes == 1_000)
    }

    @Test func theCASASideReadsTheNumbersTheAgentComputed() async throws {
        let dir = try CASAFixtures.temporaryDirectory("casa-limits")
        let doc = CASAArchiveLimits(limits: Self.configured, products: Self.products, asdmBytes: Self.asdmBytes)
        let file = dir + "/" + CASAArchiveLimits.fileName
        try doc.encoded().write(to: URL(fileURLWithPath: file))
        let casa = URL(fileURLWithPath: CASAFixtures.fakeCasa).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("casa").path
        let script = """
            import json, sys
            sys.path.insert(0, sys.argv[1])
            import casa_steps
            limits_for = casa_steps.load_archive_limits(sys.argv[2])
            print(json.dumps({name: limits_for("/some/rawdata/" + name) for name in sys.argv[3:]}))
            """
        let names = [Self.caltables, Self.flags, Self.otherFlags, Self.aux, Self.rawTar, "not-listed.tgz"]
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = ["-c", script, casa, file] + names
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "casa_steps.load_archive_limits failed")
        let read = try JSONDecoder().decode([String: ArchiveLimits].self, from: output)
        for name in names.dropLast() {
            #expect(read[name] == doc.archives[name], "\(name)")
        }
        #expect(read["not-listed.tgz"] == Self.configured)
    }

    @Test func theModularRunnerPassesTheFile() async throws {
        let dir = try CASAFixtures.temporaryDirectory("casa-limits-runner")
        let venv = dir + "/venv"
        try await CASAEnvironment.install(venv: venv, programDir: CASAFixtures.fakeCasa + "/modular")
        let make = Process()
        make.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        make.arguments = ["-m", "venv", "--without-pip", venv]
        try make.run()
        make.waitUntilExit()
        try #require(make.terminationStatus == 0, "python3 -m venv failed")
        let tree = try CASAFixtures.makeTree(in: dir)
        let file = dir + "/" + CASAArchiveLimits.fileName
        try CASAArchiveLimits(limits: Self.configured, products: Self.products).encoded().write(
            to: URL(fileURLWithPath: file))
        var invocation = tree.invocation()
        invocation.archiveLimitsFile = file
        let casa = CASAInstallation(
            name: "modular", kind: .modular, home: venv, version: "6.7.0.31",
            programDir: CASAFixtures.fakeCasa + "/modular")
        let result = try await ModularRunner(
            installation: casa, gracePeriod: .seconds(2), parallelExecBlocks: 2, logger: CASAFixtures.logger
        )
        .run(invocation, reporter: RecordingReporter())
        let output = (try? String(contentsOfFile: result.stdoutLog, encoding: .utf8)) ?? ""
        #expect(result.exitStatus == .exited(0), "fake restore_mous.py output:\n\(output)")
        #expect(
            result.argv == [
                venv + "/bin/python3", CASAFixtures.fakeCasa + "/modular/restore_mous.py", "--parallel", "2",
                "--archive-limits", file, tree.ppr,
            ])
        #expect(output.contains("ARCHIVE-LIMITS ") && output.contains(Self.caltables), "\(output)")
    }
}
