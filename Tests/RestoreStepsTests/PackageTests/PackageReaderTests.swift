import Delivery
import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// PackageReader.read and RawdataStep.unpack/locateAsdm on small trees and tars built in a temp directory.
@Suite(.tags(.unit)) struct PackageReaderTests {
    static let ous = "uid___A001_X1284_X265f"
    static let treePath =
        "2017.1.00886.L/science_goal.uid___A001_X1284_X265d/group.uid___A001_X1284_X265e/member.uid___A001_X1284_X265f"
    static let disk1 = "uid___A002_Xc7111c_X3979", disk2 = "uid___A002_Xc7111c_X409e"

    static func write(_ path: String, _ text: String = "x") throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A directory `base/top` whose ASDM is at `relative` (with one file), tarred to `tar`.
    static func asdmTar(_ relative: String, top: String, tar: String) throws {
        let base = try SeedMous.temporaryDirectory().path
        try write(base + "/" + relative + "/ASDM.xml", "<ASDM/>")
        try SafeArchive.createTar(of: base + "/" + top, at: tar, gzip: false)
    }

    /// An untarred package: calibration (manifest), script, EB1 untarred; EB2 as a member-tree raw tar.
    static func package() throws -> (root: String, base: String) {
        let base = try SeedMous.temporaryDirectory().path
        let root = base + "/pkg"
        let member = root + "/" + treePath
        try write(
            member + "/calibration/member.\(ous).hifa_calimage.pipeline_manifest.xml",
            """
            <?xml version="1.0" ?><piperesults name="\(ous)"><ous name="\(ous)"><casaversion name="6.5.4-9"/>
            <session name="session_1"><caltables name="\(ous).session_1.caltables.tgz"/><asdm name="\(disk1).ms"><finalflags name="\(disk1).ms.flagversions.tgz"/><applycmds name="\(disk1).ms.calapply.txt"/></asdm><asdm name="\(disk2).ms"><finalflags name="\(disk2).ms.flagversions.tgz"/><applycmds name="\(disk2).ms.calapply.txt"/></asdm></session>
            </ous></piperesults>
            """)
        try write(member + "/calibration/member.\(ous).session_1.caltables.tgz")
        for disk in [disk1, disk2] {
            try write(member + "/calibration/\(disk).ms.flagversions.tgz")
            try write(member + "/calibration/\(disk).ms.calapply.txt")
        }
        try write(member + "/script/member.\(ous).scriptForPI.py")
        try write(member + "/raw/\(disk1).asdm.sdm/ASDM.xml", "<ASDM/>")
        try write(base + "/secret.txt", "outside")
        try FileManager.default.createSymbolicLink(
            atPath: member + "/calibration/member.\(ous).stolen.tgz", withDestinationPath: base + "/secret.txt")
        try asdmTar(
            "2017.1.00886.L/science_goal.uid___A001_X1284_X265d/group.uid___A001_X1284_X265e/member.uid___A001_X1284_X265f/raw/\(disk2).asdm.sdm",
            top: "2017.1.00886.L", tar: root + "/2017.1.00886.L_\(disk2).asdm.sdm.tar")
        return (PackageLocation.realPath(root)!, PackageLocation.realPath(base)!)
    }

    static func read(_ root: String, scratch: String) throws -> PackageContents {
        try PackageReader.read(
            root: root, location: root, mous: AlmaUid(SeedMous.mous)!, scratch: scratch, limits: ArchiveLimits())
    }

    @Test func readsAnUntarredPackageWithARawTar() throws {
        let (root, base) = try Self.package()
        let contents = try Self.read(root, scratch: base + "/scratch")
        #expect(contents.tree.path == root + "/" + Self.treePath)
        #expect(contents.manifest?.name == "member.\(Self.ous).hifa_calimage.pipeline_manifest.xml")
        #expect(contents.manifest?.document.sessions.first?.asdms.count == 2)
        #expect(contents.scriptFiles.keys.sorted() == ["member.\(Self.ous).scriptForPI.py"])
        // The symlink to a file outside the package is not a calibration file.
        #expect(
            contents.calibrationFiles.keys.sorted() == [
                "member.\(Self.ous).hifa_calimage.pipeline_manifest.xml", "member.\(Self.ous).session_1.caltables.tgz",
            ]
                + [Self.disk1, Self.disk2].flatMap { ["\($0).ms.calapply.txt", "\($0).ms.flagversions.tgz"] })
        #expect(!contents.calibrationFiles.values.contains { $0.hasSuffix("secret.txt") })
        #expect(contents.asdms[Self.disk1]?.kind == .directory)
        #expect(contents.asdms[Self.disk1]?.path == root + "/" + Self.treePath + "/raw/\(Self.disk1).asdm.sdm")
        let tar = try #require(contents.asdms[Self.disk2])
        #expect(tar.kind == .tar && tar.incomplete == nil)
        #expect(contents.calibrationPPR == nil)
        // And it plans.
        let plan = try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: contents)
        #expect(plan.execBlocks.map(\.asdmDiskName.rawValue) == [Self.disk1, Self.disk2])
    }

    @Test func aTruncatedRawTarIsDetected() throws {
        let (root, base) = try Self.package()
        let tarPath = root + "/2017.1.00886.L_\(Self.disk2).asdm.sdm.tar"
        let whole = try Data(contentsOf: URL(fileURLWithPath: tarPath))
        #expect(PackageReader.tarIncompleteness(tarPath, size: Int64(whole.count)) == nil)
        // Cut at a block boundary before the end-of-archive blocks: the names still read, the end is missing.
        try whole.prefix(whole.count - 1024).write(to: URL(fileURLWithPath: tarPath))
        let contents = try Self.read(root, scratch: base + "/scratch")
        let reason = try #require(contents.asdms[Self.disk2]?.incomplete)
        #expect(reason.contains("two zero blocks"))
        #expect(throws: RestoreError.self) {
            try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: contents)
        }
        // Cut at a block boundary inside a member's zero data: it ends in zero blocks, but the member runs past the
        // end of the file (the fixture's truncated package does this).
        let zeros = base + "/zeros"
        try FileManager.default.createDirectory(atPath: zeros + "/top", withIntermediateDirectories: true)
        try Data(repeating: 0, count: 64 * 1024).write(to: URL(fileURLWithPath: zeros + "/top/binary"))
        try Data("x".utf8).write(to: URL(fileURLWithPath: zeros + "/top/z-last"))
        let zeroTar = base + "/zeros.tar"
        try SafeArchive.createTar(of: zeros + "/top", at: zeroTar, gzip: false)
        let zeroWhole = try Data(contentsOf: URL(fileURLWithPath: zeroTar))
        #expect(PackageReader.tarIncompleteness(zeroTar, size: Int64(zeroWhole.count)) == nil)
        let cut = zeroWhole.prefix(zeroWhole.count / 2 / 512 * 512)
        #expect(cut.suffix(1024).allSatisfy { $0 == 0 }, "the cut lies in the zero data")
        try cut.write(to: URL(fileURLWithPath: zeroTar))
        #expect(PackageReader.tarIncompleteness(zeroTar, size: Int64(cut.count))?.contains("needs") == true)
        try whole.prefix(1500).write(to: URL(fileURLWithPath: tarPath))
        #expect(PackageReader.tarIncompleteness(tarPath, size: 1500)?.contains("512-byte") == true)
        #expect(
            PackageReader.tarIncompleteness(base + "/x.tar.gz", size: 1500) == nil,
            "compressed tars are checked when unpacked")
    }

    @Test func asdmInTarReadsEveryLayout() throws {
        let dir = try SeedMous.temporaryDirectory().path
        try Self.asdmTar("top/raw/\(Self.disk1).asdm.sdm", top: "top", tar: dir + "/member.tar")
        #expect(PackageReader.asdmInTar(dir + "/member.tar") == Self.disk1)
        try Self.asdmTar(Self.disk1, top: Self.disk1, tar: dir + "/plain.tar")
        #expect(PackageReader.asdmInTar(dir + "/plain.tar") == Self.disk1)
        try Self.asdmTar("images/cube", top: "images", tar: dir + "/other.tar")
        #expect(PackageReader.asdmInTar(dir + "/other.tar") == nil)
        try Self.write(dir + "/garbage.tar", String(repeating: "no tar here ", count: 100))
        #expect(PackageReader.asdmInTar(dir + "/garbage.tar") == nil)
    }

    @Test func readsAnAuxiliaryTarIntoTheScratchDirectory() throws {
        let (untarred, base) = try Self.package()
        let root = base + "/tars"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.removeItem(
            atPath: untarred + "/" + Self.treePath + "/calibration/member.\(Self.ous).stolen.tgz")
        try SafeArchive.createTar(
            of: untarred + "/2017.1.00886.L", at: root + "/2017.1.00886.L_\(Self.ous)_auxiliary.tar", gzip: false)
        let contents = try Self.read(root, scratch: base + "/scratch")
        #expect(contents.tree.path.hasPrefix(base + "/scratch/"))
        #expect(contents.manifest != nil)
        #expect(contents.projectHint == "2017.1.00886.L")
        #expect(contents.calibrationFiles.count == 6)  // manifest, caltables, and flagversions + calapply of two EBs
    }

    @Test func aPackageForAnotherMousIsRefused() throws {
        let (root, base) = try Self.package()
        do {
            _ = try PackageReader.read(
                root: root, location: root, mous: AlmaUid("uid://A001/X1284/X2700")!, scratch: base + "/s",
                limits: ArchiveLimits())
            Issue.record("another MOUS's package accepted")
        } catch {
            #expect(error.code == .packageWrongMous)
            #expect(error.message.contains(SeedMous.mous))
        }
    }
}

/// RawdataStep.unpack / locateAsdm: the three accepted tar layouts and a refused one.
@Suite(.tags(.unit)) struct RawdataUnpackTests {
    static let disk = PackageReaderTests.disk1

    @Test(arguments: [
        (Self.disk, Self.disk),
        ("\(Self.disk).asdm.sdm", "\(Self.disk).asdm.sdm"),
        (
            "2017.1.00886.L/science_goal.uid___A001_X1_X2/group.uid___A001_X1_X3/member.uid___A001_X1_X4/raw/\(Self.disk).asdm.sdm",
            "2017.1.00886.L"
        ),
    ])
    func unpacksEachAcceptedLayout(relative: String, top: String) throws {
        let dir = try SeedMous.temporaryDirectory().path
        try PackageReaderTests.asdmTar(relative, top: top, tar: dir + "/eb.tar")
        let rawdata = dir + "/rawdata"
        try FileManager.default.createDirectory(atPath: rawdata, withIntermediateDirectories: true)
        try RawdataStep.unpack(dir + "/eb.tar", as: Self.disk, into: rawdata, limits: ArchiveLimits())
        #expect(try String(contentsOfFile: rawdata + "/\(Self.disk)/ASDM.xml", encoding: .utf8) == "<ASDM/>")
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: rawdata) == [Self.disk], "no staging directory left")
    }

    @Test func refusesATarWithoutTheASDM() throws {
        let dir = try SeedMous.temporaryDirectory().path
        // The ASDM directory exists, but not at the top and not under raw/: not an accepted layout.
        try PackageReaderTests.asdmTar("misc/elsewhere/\(Self.disk).asdm.sdm", top: "misc", tar: dir + "/eb.tar")
        let rawdata = dir + "/rawdata"
        try FileManager.default.createDirectory(atPath: rawdata, withIntermediateDirectories: true)
        do {
            try RawdataStep.unpack(dir + "/eb.tar", as: Self.disk, into: rawdata, limits: ArchiveLimits())
            Issue.record("wrong layout accepted")
        } catch {
            #expect(error.code.rawValue == "asdmLayout")
            #expect(error.message.contains("misc"))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: rawdata).isEmpty)
    }

    @Test func locateAsdmNeedsExactlyOne() throws {
        let dir = try SeedMous.temporaryDirectory().path
        try FileManager.default.createDirectory(
            atPath: dir + "/a/raw/\(Self.disk).asdm.sdm", withIntermediateDirectories: true)
        #expect(RawdataStep.locateAsdm(Self.disk, in: dir) == dir + "/a/raw/\(Self.disk).asdm.sdm")
        try FileManager.default.createDirectory(atPath: dir + "/b/raw/\(Self.disk)", withIntermediateDirectories: true)
        #expect(RawdataStep.locateAsdm(Self.disk, in: dir) == nil, "two candidates")
        let other = try SeedMous.temporaryDirectory().path
        try FileManager.default.createDirectory(atPath: other + "/\(Self.disk)x", withIntermediateDirectories: true)
        #expect(RawdataStep.locateAsdm(Self.disk, in: other) == nil)
    }
}
