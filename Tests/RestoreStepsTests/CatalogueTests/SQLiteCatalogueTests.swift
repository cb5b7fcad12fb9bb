import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct SQLiteCatalogueTests {
    func catalogue() throws -> SQLiteCatalogue {
        try SQLiteCatalogue(path: try SeedMous.temporaryDirectory().appendingPathComponent("catalogue.db").path)
    }

    @Test func importThenReadGivesTheSameRecord() throws {
        let catalogue = try catalogue()
        let imported = try catalogue.import(SeedMous.file())
        #expect(imported == [SeedMous.mous])
        #expect(try catalogue.mouses() == [SeedMous.mous])
        let stored = try #require(try catalogue.mous(SeedMous.mous))
        var expected = try SeedMous.record()
        // The catalogue returns sessions by id and EBs by start time, products by file id.
        expected.sessions.sort { $0.id < $1.id }
        expected.products.sort { $0.file.ngasFileId < $1.file.ngasFileId }
        #expect(stored == expected)
        #expect(try catalogue.mous("uid://A001/X1284/X0") == nil)
    }

    @Test func reimportReplacesTheWholeMous() throws {
        let catalogue = try catalogue()
        try catalogue.import(SeedMous.file())
        var entry = SeedMous.mousEntry()
        entry.execBlocks.removeLast()  // X2dfe goes away
        entry.execBlocks[2].qa0 = "Fail"
        entry.products = entry.products.filter { !$0.ngasFileId.contains("session_3") }
        entry.releaseDate = nil
        entry.ousStatusXml = "<OUSStatus/>"
        try catalogue.import(SeedMous.file([entry]))
        let stored = try #require(try catalogue.mous(SeedMous.mous))
        #expect(stored.execBlocks.map(\.uid.rawValue) == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb3])
        #expect(stored.execBlocks[2].qa0 == .fail)
        #expect(!stored.products.contains { $0.file.ngasFileId.contains("session_3") })
        #expect(stored.releaseDate == nil)
        #expect(stored.ousStatusXml == "<OUSStatus/>")
        // The removed EB is really gone: another MOUS may now claim it.
        var other = SeedMous.mousEntry()
        other.mous = "uid://A001/X1284/X2700"
        other.schedBlock = .init(uid: "uid://A001/X1284/X2701", name: "Other", statusUid: "uid://A001/X1284/X2702")
        other.sessions = [.init(id: "other#S1", startTime: nil, endTime: nil)]
        other.execBlocks = [
            SeedMous.eb(SeedMous.eb4, session: nil, start: "2017-12-06T03:00:00Z", end: "2017-12-06T04:10:00Z")
        ]
        other.execBlocks[0].sessionId = "other#S1"
        try catalogue.import(SeedMous.file([other]))
        #expect(try catalogue.mouses() == [SeedMous.mous, "uid://A001/X1284/X2700"])
    }

    @Test func refusesAnEBOwnedByAnotherMousAndChangesNothing() throws {
        let catalogue = try catalogue()
        try catalogue.import(SeedMous.file())
        var other = SeedMous.mousEntry()
        other.mous = "uid://A001/X1284/X2700"
        other.schedBlock = .init(uid: "uid://A001/X1284/X2701", name: "Other", statusUid: "uid://A001/X1284/X2702")
        other.sessions = nil
        for i in other.execBlocks.indices { other.execBlocks[i].sessionId = nil }
        // A file with a good new MOUS first, then the conflicting one: the whole import is rolled back.
        var good = SeedMous.mousEntry()
        good.mous = "uid://A001/X1284/X2800"
        good.schedBlock = .init(uid: "uid://A001/X1284/X2801", name: "Good", statusUid: "uid://A001/X1284/X2802")
        good.sessions = nil
        good.execBlocks = []
        #expect(throws: CatalogueError.self) { try catalogue.import(SeedMous.file([good, other])) }
        #expect(try catalogue.mouses() == [SeedMous.mous])
    }

    @Test func storesUnderALMANamesAndAnswersTheRestoreQueries() throws {
        let path = try SeedMous.temporaryDirectory().appendingPathComponent("catalogue.db").path
        let catalogue = try SQLiteCatalogue(path: path)
        try catalogue.import(SeedMous.file())
        // Read the tables back with a second, independent connection and the seed's queries.
        let db = try SQLiteDatabaseProbe(path: path)
        let ebs = try db.strings(
            """
            SELECT se.SE_EB_UID FROM SCHED_BLOCK_STATUS sbs JOIN SHIFTLOG_ENTRIES se ON se.SE_SB_ID = sbs.DOMAIN_ENTITY_ID
            WHERE sbs.PARENT_OBS_UNIT_SET_STATUS_ID = 'uid://A001/X1284/X265f' AND (se.SE_QA0FLAG LIKE 'Pass%' OR se.SE_QA0FLAG LIKE 'SemiPass%')
            ORDER BY se.SE_STARTTIME
            """)
        #expect(ebs == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb3, SeedMous.eb4])
        let science = try db.strings(
            "SELECT COUNT(*) FROM ASA_PRODUCT_FILES WHERE ASA_OUS_ID = 'uid://A001/X1284/X265f' AND FILE_CLASS = 'science'"
        )
        #expect(science == ["1"])
        let manual = try db.strings(
            "SELECT COUNT(*) FROM ASA_PRODUCT_FILES WHERE ASA_OUS_ID = 'uid://A001/X1284/X265f' AND FILE_CLASS = 'script' AND NGAS_FILE_ID LIKE '%scriptFor%Cal%'"
        )
        #expect(manual == ["0"])
        let release = try db.strings(
            "SELECT RELEASE_DATE FROM ASA_DELIVERY_STATUS WHERE DELIVERY_NAME = '2017.1.00886.L_uid___A001_X1284_X265f'"
        )
        #expect(release == ["2019-06-01T00:00:00.000Z"])
        let sessions = try db.strings(
            """
            SELECT DISTINCT s.SESSIONID FROM AQUA_EXECBLOCK e JOIN AQUA_SESSION s ON s.SESSIONID = e.SESSIONID
            JOIN ASA_SCIENCE a ON a.ASDM_UID = e.EXECBLOCKUID WHERE a.MEMBER_OUSS_ID = 'uid://A001/X1284/X265f' ORDER BY s.ENDTIME ASC
            """)
        #expect(sessions == ["\(SeedMous.mous)#S1", "\(SeedMous.mous)#S2", "\(SeedMous.mous)#S3"])
        let gous = try db.strings(
            """
            SELECT g.STATUS_ENTITY_ID FROM OBS_UNIT_SET_STATUS m JOIN OBS_UNIT_SET_STATUS s ON s.STATUS_ENTITY_ID = m.PARENT_OBS_UNIT_SET_STATUS_ID
            JOIN OBS_UNIT_SET_STATUS g ON g.STATUS_ENTITY_ID = s.PARENT_OBS_UNIT_SET_STATUS_ID WHERE m.STATUS_ENTITY_ID = 'uid://A001/X1284/X265f'
            """)
        #expect(gous == ["uid://A001/X1284/X265e"])
        let asdm = try db.strings(
            "SELECT NGAS_FILE_ID FROM ASDM_ARCHIVE_FILES WHERE ASDM_UID = 'uid://A002/Xc7111c/X3979'")
        #expect(asdm == ["uid___A002_Xc7111c_X3979.asdm.sdm.tar.gz"])
    }

    @Test func survivesReopening() throws {
        let path = try SeedMous.temporaryDirectory().appendingPathComponent("catalogue.db").path
        try SQLiteCatalogue(path: path).import(SeedMous.file())
        let reopened = try SQLiteCatalogue(path: path)
        #expect(try reopened.mous(SeedMous.mous)?.execBlocks.count == 4)
    }
}

@Suite(.tags(.unit)) struct SQLiteCatalogueFileImportTests {
    @Test func importsAFileAndReportsProblemsOfABadOne() throws {
        let dir = try SeedMous.temporaryDirectory()
        let catalogue = try SQLiteCatalogue(path: dir.appendingPathComponent("c.db").path)
        let good = dir.appendingPathComponent("good.json")
        try SeedMous.file().encoded().write(to: good)
        #expect(try catalogue.import(contentsOf: good) == [SeedMous.mous])
        let bad = dir.appendingPathComponent("bad.json")
        try Data(#"{"schema": "dropbox-agent/catalog/v0", "mouses": []}"#.utf8).write(to: bad)
        do {
            try catalogue.import(contentsOf: bad)
            Issue.record("bad file imported")
        } catch let error as CatalogueImportError {
            #expect(error.problems.map(\.path) == ["$.schema", "$.mouses"])
        }
        #expect(throws: CatalogueError.self) {
            try catalogue.import(contentsOf: dir.appendingPathComponent("absent.json"))
        }
    }
}

@Suite(.tags(.unit)) struct SQLiteCatalogueRemoveTests {
    @Test func removesAMousButKeepsSharedRows() throws {
        let path = try SeedMous.temporaryDirectory().appendingPathComponent("c.db").path
        let catalogue = try SQLiteCatalogue(path: path)
        try catalogue.import(SeedMous.file())
        #expect(try catalogue.remove(SeedMous.mous))
        #expect(try !catalogue.remove(SeedMous.mous))
        #expect(try catalogue.mouses() == [])
        #expect(try catalogue.mous(SeedMous.mous) == nil)
        let probe = try SQLiteDatabaseProbe(path: path)
        for table in [
            "AQUA_EXECBLOCK", "SHIFTLOG_ENTRIES", "AQUA_SESSION", "ASA_PRODUCT_FILES", "ASA_SCIENCE",
            "ASDM_ARCHIVE_FILES",
            "SCHED_BLOCK_STATUS", "BMMV_SCHEDBLOCK", "ASA_DELIVERY_STATUS", "AQUA_OUS",
        ] {
            #expect(try probe.strings("SELECT COUNT(*) FROM \(table)") == ["0"], "\(table)")
        }
        // The project, SOUS and GOUS may be shared with other MOUSes, so they stay.
        #expect(
            try probe.strings("SELECT STATUS_ENTITY_ID FROM OBS_UNIT_SET_STATUS ORDER BY 1") == [
                "uid://A001/X1284/X265d", "uid://A001/X1284/X265e",
            ])
        #expect(try probe.strings("SELECT CODE FROM ASA_PROJECT") == [SeedMous.project])
        // And the MOUS can come back.
        try catalogue.import(SeedMous.file())
        #expect(try catalogue.mous(SeedMous.mous)?.execBlocks.count == 4)
    }
}
