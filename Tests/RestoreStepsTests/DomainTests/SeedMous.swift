import Foundation
import DropboxTestKit
import Testing
@testable import RestoreSteps

/// The seed's test MOUS (brief §1): project 2017.1.00886.L, MOUS uid://A001/X1284/X265f, EBs
/// uid://A002/Xc7111c/X3979, /X409e, /X86a7 and uid://A002/Xc72427/X2dfe.
///
/// Only those uids and the project code are real. Everything else — the ObsProject/ProjectStatus/SOUS/GOUS
/// and SB uids, part id, titles, times, sessions, file sizes, checksums — is INVENTED but plausible: the real
/// values are not public. Sessions: S1 = X3979 + X409e (back to back), S2 = X86a7, S3 = X2dfe.
enum SeedMous {
    static let mous = "uid://A001/X1284/X265f"
    static let project = "2017.1.00886.L"
    static let eb1 = "uid://A002/Xc7111c/X3979"
    static let eb2 = "uid://A002/Xc7111c/X409e"
    static let eb3 = "uid://A002/Xc7111c/X86a7"
    static let eb4 = "uid://A002/Xc72427/X2dfe"
    static let oussid = "uid___A001_X1284_X265f"

    static func session(_ n: Int, start: String?, end: String?) -> CatalogueImportFile.Session {
        .init(id: "\(mous)#S\(n)", startTime: start, endTime: end)
    }

    static func eb(
        _ uid: String, qa0: String = "Pass", session: Int?, start: String, end: String, asdm: Bool = true
    ) -> CatalogueImportFile.ExecBlock {
        let disk = uid.replacingOccurrences(of: ":", with: "_").replacingOccurrences(of: "/", with: "_")
        return .init(
            uid: uid, qa0: qa0, sessionId: session.map { "\(mous)#S\($0)" }, startTime: start, endTime: end,
            asdm: asdm
                ? .init(
                    ngasFileId: "\(disk).asdm.sdm.tar.gz",
                    size: 1_000_000 + Int64(disk.utf8.reduce(0) { $0 + Int($1) }),
                    checksum: "3735928559", checksumVariant: "crc32") : nil)
    }

    static func product(_ fileClass: String, _ id: String, size: Int64 = 4096) -> CatalogueImportFile.Product {
        .init(fileClass: fileClass, ngasFileId: id, size: size, checksum: "123456789", checksumVariant: "crc32")
    }

    /// Calibration products for `sessions` session numbers and `ebs`, as hifa_exportdata names them.
    static func products(sessions: [Int], ebs: [String]) -> [CatalogueImportFile.Product] {
        var list = [
            product("calibration", "\(oussid).hifa_calimage.pipeline_manifest.xml", size: 2048),
            product("calibration", "\(oussid).hifa_calimage.auxproducts.tgz", size: 70_000),
            product("script", "\(oussid).hifa_calimage.casa_piperestorescript.py", size: 900),
            product("script", "member.\(oussid).scriptForPI.py", size: 60_000),
            product("science", "member.\(oussid).Orion_sci.spw25.cube.I.pbcor.fits", size: 50_000_000),
            product("qa", "\(oussid).qa2_report.pdf", size: 1_000_000),
            product("calibration", "\(oussid).product_ingestor.xml", size: 300),
            product("calibration", "\(oussid).product_rename.txt", size: 200),
        ]
        for n in sessions {
            list.append(product("calibration", "\(oussid).session_\(n).caltables.tgz", size: 5_000_000 + Int64(n)))
        }
        for eb in ebs {
            let disk = eb.replacingOccurrences(of: ":", with: "_").replacingOccurrences(of: "/", with: "_")
            list.append(product("calibration", "\(disk).ms.flagversions.tgz", size: 300_000))
            list.append(product("calibration", "\(disk).ms.calapply.txt", size: 3_000))
        }
        return list
    }

    /// The seed MOUS with three sessions (S1: EB1+EB2, S2: EB3, S3: EB4), all Pass.
    static func mousEntry() -> CatalogueImportFile.Mous {
        .init(
            mous: mous, project: project,
            obsProject: "uid://A001/X1284/X2649", projectStatus: "uid://A001/X1284/X264a",
            obsUnitSetPartId: "X1583216498",
            sous: "uid://A001/X1284/X265d", gous: "uid://A001/X1284/X265e",
            title: "Orion first fringes & friends", releaseDate: "2019-06-01T00:00:00Z",
            schedBlock: .init(
                uid: "uid://A001/X1284/X2660", name: "Orion_a_06_TM1", statusUid: "uid://A001/X1284/X2661"),
            sessions: [
                session(1, start: "2017-12-03T05:00:00Z", end: "2017-12-03T07:20:00Z"),
                session(2, start: "2017-12-05T04:00:00Z", end: "2017-12-05T05:10:00Z"),
                session(3, start: "2017-12-06T03:00:00Z", end: "2017-12-06T04:15:00Z"),
            ],
            execBlocks: [
                eb(eb1, session: 1, start: "2017-12-03T05:00:00Z", end: "2017-12-03T06:05:00Z"),
                eb(eb2, session: 1, start: "2017-12-03T06:10:00Z", end: "2017-12-03T07:15:00Z"),
                eb(eb3, session: 2, start: "2017-12-05T04:00:00Z", end: "2017-12-05T05:05:00Z"),
                eb(eb4, session: 3, start: "2017-12-06T03:00:00Z", end: "2017-12-06T04:10:00Z"),
            ],
            products: products(sessions: [1, 2, 3], ebs: [eb1, eb2, eb3, eb4]),
            ousStatusXml: nil
        )
    }

    static func file(_ mouses: [CatalogueImportFile.Mous] = [mousEntry()]) -> CatalogueImportFile {
        CatalogueImportFile(mouses: mouses)
    }

    static func record(_ entry: CatalogueImportFile.Mous = mousEntry()) throws -> MousRecord {
        try #require(try CatalogueImportFile(mouses: [entry]).records().first)
    }

    static let now = UTCTime(parsing: "2026-01-01T00:00:00Z")!.date

    static func plan(_ entry: CatalogueImportFile.Mous = mousEntry()) throws -> RestorePlan {
        try Restorability.plan(
            for: RestoreRequest(mous: mous), record: try record(entry), now: now, allowProprietary: false)
    }

    /// A fresh temporary directory (the shared kit's).
    static func temporaryDirectory() throws -> URL { try TemporaryDirectory("domain-tests").url }
}
