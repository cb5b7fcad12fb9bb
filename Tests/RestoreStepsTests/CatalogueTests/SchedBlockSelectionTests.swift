import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// Issue 8 §3: the scheduling block is chosen by `SCHED_BLOCK_STATUS.DOMAIN_ENTITY_STATE`, never silently by uid.
@Suite(.tags(.unit)) struct SchedBlockSelectionTests {
    static func sb(_ n: Int, _ state: String?) -> MousRecord.SchedBlock {
        .init(
            uid: AlmaUid("uid://A001/X1284/X27\(n)0")!, name: "SB\(n)",
            statusUid: AlmaUid("uid://A001/X1284/X27\(n)1")!, state: state)
    }

    func failure(_ sbs: [MousRecord.SchedBlock]) -> RestoreError? {
        do {
            _ = try SchedBlockSelection.choose(sbs, mous: SeedMous.mous)
            return nil
        } catch {
            return error
        }
    }

    @Test func aSingleSBIsUsedWhateverItsState() throws {
        for state in [nil, "FullyObserved", "Canceled", "Suspended"] {
            let choice = try SchedBlockSelection.choose([Self.sb(1, state)], mous: SeedMous.mous)
            #expect(choice.chosen == Self.sb(1, state))
            #expect(choice.others.isEmpty)
        }
    }

    @Test(arguments: ["Canceled", "Cancelled", "CANCELLED", "Deleted", "Rejected", "DoNotObserve", "Superseded"])
    func aWithdrawnSBGivesWayToTheLiveOne(withdrawn: String) throws {
        // The withdrawn SB has the smaller uid: the old "first by uid" rule would have picked it.
        let choice = try SchedBlockSelection.choose(
            [Self.sb(2, "FullyObserved"), Self.sb(1, withdrawn)], mous: SeedMous.mous)
        #expect(choice.chosen.uid == Self.sb(2, nil).uid)
        #expect(choice.others == [Self.sb(1, withdrawn)])
    }

    @Test func anSBWithoutAStateCountsAsLive() throws {
        let choice = try SchedBlockSelection.choose([Self.sb(1, "Canceled"), Self.sb(2, nil)], mous: SeedMous.mous)
        #expect(choice.chosen == Self.sb(2, nil))
    }

    @Test func severalLiveSBsAreAnErrorNamingThem() throws {
        for pair in [
            [Self.sb(1, "FullyObserved"), Self.sb(2, "Ready")], [Self.sb(1, nil), Self.sb(2, nil)],
            [Self.sb(1, "ObservingTimedOut"), Self.sb(2, "Phase2Submitted"), Self.sb(3, "Canceled")],
        ] {
            let error = try #require(failure(pair))
            #expect(error.code == .inconsistentMetadata)
            #expect(
                error.message.contains("uid://A001/X1284/X2710 (\(pair[0].state ?? "no state"))"), "\(error.message)")
            #expect(
                error.message.contains("uid://A001/X1284/X2720 (\(pair[1].state ?? "no state"))"), "\(error.message)")
            #expect(!error.message.contains("X2730"), "a withdrawn SB is not a candidate: \(error.message)")
            #expect(error.hint?.contains("DOMAIN_ENTITY_STATE") == true)
        }
    }

    @Test func allWithdrawnIsAnError() throws {
        let error = try #require(failure([Self.sb(1, "Canceled"), Self.sb(2, "Superseded")]))
        #expect(error.code == .inconsistentMetadata)
        #expect(error.message.contains("every scheduling block is withdrawn"))
        #expect(error.message.contains("X2710 (Canceled)") && error.message.contains("X2720 (Superseded)"))
    }

    @Test func stateSpelling() {
        #expect(SchedBlockSelection.isValidState("FullyObserved"))
        #expect(SchedBlockSelection.isValidState("Phase2Submitted"))
        #expect(!SchedBlockSelection.isValidState("Fully Observed"))
        #expect(!SchedBlockSelection.isValidState(""))
        #expect(!SchedBlockSelection.isValidState("2Ready"))
        #expect(!SchedBlockSelection.isWithdrawn(nil))
        #expect(!SchedBlockSelection.isWithdrawn("Suspended"))
    }
}

@Suite(.tags(.unit)) struct CatalogueSchedBlockStateTests {
    static let canceledSB = CatalogueImportFile.SchedBlock(
        uid: "uid://A001/X1284/X2650", name: "Orion_a_06_TM1_old",
        statusUid: "uid://A001/X1284/X2651", state: "Canceled")

    func catalogue() throws -> (SQLiteCatalogue, String) {
        let path = try SeedMous.temporaryDirectory().appendingPathComponent("catalogue.db").path
        return (try SQLiteCatalogue(path: path), path)
    }

    @Test func aFileWithoutStatesImportsAndReadsAsBefore() throws {
        let (catalogue, path) = try catalogue()
        try catalogue.import(contentsOf: try writeJSON(SeedMous.file().encoded()))
        let stored = try #require(try catalogue.mous(SeedMous.mous))
        #expect(
            stored.schedBlock
                == MousRecord.SchedBlock(
                    uid: AlmaUid("uid://A001/X1284/X2660")!, name: "Orion_a_06_TM1",
                    statusUid: AlmaUid("uid://A001/X1284/X2661")!))
        #expect(stored.otherSchedBlocks == nil)
        #expect(
            try SQLiteDatabaseProbe(path: path).strings("SELECT DOMAIN_ENTITY_STATE FROM SCHED_BLOCK_STATUS") == [
                "NULL"
            ])
        // The example of INTERFACES.md §1 (no state either) still decodes.
        #expect(
            try CatalogueImportFile.decode(Data(CatalogueImportFileTests.interfacesExample.utf8)).mouses[0].schedBlock
                .state == nil)
    }

    @Test func keepsEachSBsStateAndChoosesTheLiveOne() throws {
        let (catalogue, path) = try catalogue()
        var entry = SeedMous.mousEntry()
        entry.schedBlock.state = "FullyObserved"
        entry.otherSchedBlocks = [Self.canceledSB]
        try catalogue.import(SeedMous.file([entry]))
        let probe = try SQLiteDatabaseProbe(path: path)
        #expect(
            try probe.strings(
                "SELECT DOMAIN_ENTITY_ID || ' ' || DOMAIN_ENTITY_STATE FROM SCHED_BLOCK_STATUS ORDER BY 1")
                == ["uid://A001/X1284/X2650 Canceled", "uid://A001/X1284/X2660 FullyObserved"])
        let stored = try #require(try catalogue.mous(SeedMous.mous))
        #expect(stored.schedBlock.uid.rawValue == "uid://A001/X1284/X2660")  // not X2650, the first by uid
        #expect(stored.schedBlock.state == "FullyObserved")
        #expect(stored.otherSchedBlocks?.map(\.uid.rawValue) == ["uid://A001/X1284/X2650"])
        #expect(stored.execBlocks.count == 4)
        // The chosen SB is what the PPR names.
        let plan = try Restorability.plan(
            for: RestoreRequest(mous: SeedMous.mous), record: stored, now: SeedMous.now, allowProprietary: false)
        #expect(plan.record.schedBlock.uid.rawValue == "uid://A001/X1284/X2660")
        // Re-import replaces both SBs (the old one is gone, so another MOUS may take it).
        try catalogue.import(SeedMous.file())
        #expect(try probe.strings("SELECT DOMAIN_ENTITY_ID FROM SCHED_BLOCK_STATUS") == ["uid://A001/X1284/X2660"])
    }

    @Test func aCancelledMainSBGivesWayToTheLiveOtherOne() throws {
        let (catalogue, _) = try catalogue()
        var entry = SeedMous.mousEntry()
        entry.schedBlock.state = "Cancelled"
        entry.otherSchedBlocks = [
            .init(
                uid: "uid://A001/X1284/X2670", name: "Orion_a_06_TM1_new", statusUid: "uid://A001/X1284/X2671",
                state: "Ready")
        ]
        try catalogue.import(SeedMous.file([entry]))
        let stored = try #require(try catalogue.mous(SeedMous.mous))
        #expect(stored.schedBlock.name == "Orion_a_06_TM1_new")
        #expect(stored.otherSchedBlocks?.map(\.state) == ["Cancelled"])
        #expect(stored.execBlocks.map(\.uid.rawValue) == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb3, SeedMous.eb4])
    }

    @Test func theImportRefusesAmbiguousOrBadlySpelledSBs() throws {
        var entry = SeedMous.mousEntry()
        entry.schedBlock.state = "FullyObserved"
        entry.otherSchedBlocks = [
            .init(uid: "uid://A001/X1284/X2650", name: "Copy", statusUid: "uid://A001/X1284/X2651", state: "Ready")
        ]
        let problems = SeedMous.file([entry]).validate()
        #expect(problems.map(\.path) == ["$.mouses[0].otherSchedBlocks"])
        #expect(
            problems.first?.message.contains("uid://A001/X1284/X2650 (Ready), uid://A001/X1284/X2660 (FullyObserved)")
                == true)

        entry.otherSchedBlocks = [
            Self.canceledSB,
            .init(uid: "uid://A001/X1284/X2660", name: "Dup", statusUid: "uid://A001/X1284/X2652", state: "Canceled"),
        ]
        entry.schedBlock.state = "Fully Observed"
        #expect(
            Set(SeedMous.file([entry]).validate().map(\.path)) == [
                "$.mouses[0].schedBlock.state", "$.mouses[0].otherSchedBlocks[1].uid",
            ])

        var json = CatalogueImportFileTests.interfacesExample.replacingOccurrences(
            of: "\"statusUid\": \"uid://A001/X3f01/X1a7\"}",
            with:
                "\"statusUid\": \"uid://A001/X3f01/X1a7\", \"state\": \"Ready\"}, \"otherSchedBlocks\": [{\"uid\": \"uid://A001/X3f01/X1b0\", \"name\": \"x\", \"statusUid\": \"uid://A001/X3f01/X1b1\", \"stat\": \"Canceled\"}]"
        )
        #expect(json != CatalogueImportFileTests.interfacesExample)
        do {
            _ = try CatalogueImportFile.decode(Data(json.utf8))
            Issue.record("misspelled field accepted")
        } catch {
            #expect(error.problems.map(\.path).contains("$.mouses[0].otherSchedBlocks[0].stat"), "\(error)")
        }
        json = json.replacingOccurrences(of: "\"stat\"", with: "\"state\"")
        let file = try CatalogueImportFile.decode(Data(json.utf8))
        let record = try #require(try file.records().first)
        #expect(record.schedBlock.state == "Ready")
        #expect(record.otherSchedBlocks?.first?.state == "Canceled")
        #expect(try CatalogueImportFile(records: [record]).records() == [record])
    }

    @Test func aSiteCatalogueWithTwoLiveSBsFailsTheRestoreInsteadOfPicking() throws {
        let (catalogue, path) = try catalogue()
        try catalogue.import(SeedMous.file())
        // A catalogue filled by other means (or by hand) gets a second SB for the MOUS.
        let probe = try SQLiteDatabaseProbe(path: path)
        try probe.execute("INSERT INTO BMMV_SCHEDBLOCK (ARCHIVE_UID, NAME) VALUES ('uid://A001/X1284/X2600', 'Older')")
        try probe.execute(
            """
            INSERT INTO SCHED_BLOCK_STATUS (STATUS_ENTITY_ID, DOMAIN_ENTITY_ID, PARENT_OBS_UNIT_SET_STATUS_ID, DOMAIN_ENTITY_STATE)
            VALUES ('uid://A001/X1284/X2601', 'uid://A001/X1284/X2600', '\(SeedMous.mous)', 'Suspended')
            """)
        do {
            _ = try catalogue.mous(SeedMous.mous)
            Issue.record("two live SBs: one was picked")
        } catch let error as RestoreError {
            #expect(error.code == .inconsistentMetadata)
            #expect(
                error.message.contains("uid://A001/X1284/X2600 (Suspended), uid://A001/X1284/X2660 (no state)"),
                "\(error.message)")
        }
        // Marking the extra one superseded makes the choice clear again.
        try probe.execute(
            "UPDATE SCHED_BLOCK_STATUS SET DOMAIN_ENTITY_STATE = 'Superseded' WHERE DOMAIN_ENTITY_ID = 'uid://A001/X1284/X2600'"
        )
        #expect(try catalogue.mous(SeedMous.mous)?.schedBlock.uid.rawValue == "uid://A001/X1284/X2660")
    }

    @Test func aVersion1CatalogueIsUpgradedInPlace() throws {
        let (catalogue, path) = try catalogue()
        try catalogue.import(SeedMous.file())
        let probe = try SQLiteDatabaseProbe(path: path)
        try probe.execute("ALTER TABLE SCHED_BLOCK_STATUS DROP COLUMN DOMAIN_ENTITY_STATE")
        try probe.execute("PRAGMA user_version = 1")
        let reopened = try SQLiteCatalogue(path: path)
        #expect(try probe.strings("PRAGMA user_version") == ["2"])
        #expect(try reopened.mous(SeedMous.mous)?.schedBlock.state == nil)
        var entry = SeedMous.mousEntry()
        entry.schedBlock.state = "FullyObserved"
        try reopened.import(SeedMous.file([entry]))
        #expect(try reopened.mous(SeedMous.mous)?.schedBlock.state == "FullyObserved")
    }

    func writeJSON(_ data: Data) throws -> URL {
        let url = try SeedMous.temporaryDirectory().appendingPathComponent("catalog.json")
        try data.write(to: url)
        return url
    }
}
