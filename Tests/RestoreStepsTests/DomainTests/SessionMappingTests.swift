import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct SessionMappingTests {
    func numbers(_ entry: CatalogueImportFile.Mous) throws -> [String: Int] {
        let assignment = try SessionMapping.compute(for: try SeedMous.record(entry))
        var result: [String: Int] = [:]
        for eb in entry.execBlocks {
            if let n = assignment.sessionNumber(of: AlmaUid(eb.uid)!) { result[eb.uid] = n }
        }
        return result
    }

    @Test func aquaRowsOrderedByEndTimeNotByListOrder() throws {
        var entry = SeedMous.mousEntry()
        entry.sessions?.reverse()
        let assignment = try SessionMapping.compute(for: try SeedMous.record(entry))
        #expect(assignment.source == .aquaSessions)
        #expect(assignment.sessions.map(\.id) == ["\(SeedMous.mous)#S1", "\(SeedMous.mous)#S2", "\(SeedMous.mous)#S3"])
        #expect(try numbers(entry) == [SeedMous.eb1: 1, SeedMous.eb2: 1, SeedMous.eb3: 2, SeedMous.eb4: 3])
    }

    @Test func nullEndTimeUsesTheLatestEBEndTimeNotLast() throws {
        var entry = SeedMous.mousEntry()
        // S1 loses its end time; by NULLS LAST it would become SESSION_3. Its EBs ended 2017-12-03T07:15.
        entry.sessions?[0].endTime = nil
        let assignment = try SessionMapping.compute(for: try SeedMous.record(entry))
        #expect(assignment.sessions.first?.id == "\(SeedMous.mous)#S1")
        #expect(assignment.sessions.first?.sortTime == UTCTime(parsing: "2017-12-03T07:15:00Z"))
        #expect(assignment.notes.contains { $0.contains("has no end time") && $0.contains("#S1") })
        // No EB end times either: its start time.
        entry.execBlocks[0].endTime = nil
        entry.execBlocks[1].endTime = nil
        entry.sessions?[0].startTime = "2017-12-05T06:00:00Z"  // after S2 ended
        #expect(try numbers(entry) == [SeedMous.eb1: 2, SeedMous.eb2: 2, SeedMous.eb3: 1, SeedMous.eb4: 3])
    }

    @Test func failedEBBetweenTwoPassEBsKeepsItsSessionNumber() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[2].qa0 = "Fail"  // S2 holds only a Failed EB
        let plan = try SeedMous.plan(entry)
        #expect(plan.sessions.sessions.count == 3)
        #expect(plan.execBlocks.map(\.sessionNumber) == [1, 1, 3])
        #expect(plan.sessionIntents.map(\.keyword) == ["SESSION_1", "SESSION_2", "SESSION_3"])
        #expect(plan.sessionIntents[1].value == "")
    }

    @Test func semiPassSessionCountsAndEmptyFirstSession() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[0].qa0 = "SemiPass"
        entry.execBlocks[1].qa0 = "Fail"
        let plan = try SeedMous.plan(entry)
        #expect(plan.sessionIntents.map(\.value) == ["", disk(SeedMous.eb3), disk(SeedMous.eb4)])
        #expect(plan.execBlocks.map(\.sessionName) == ["session_2", "session_3"])
    }

    @Test func sessionWithoutAnyEBIsKeptAsAGap() throws {
        var entry = SeedMous.mousEntry()
        // aborted, no EB
        entry.sessions?.append(SeedMous.session(4, start: "2017-12-04T01:00:00Z", end: "2017-12-04T02:00:00Z"))
        let plan = try SeedMous.plan(entry)
        #expect(
            plan.sessions.sessions.map(\.id) == [
                "\(SeedMous.mous)#S1", "\(SeedMous.mous)#S4", "\(SeedMous.mous)#S2", "\(SeedMous.mous)#S3",
            ])
        #expect(plan.execBlocks.map(\.sessionNumber) == [1, 1, 3, 4])
    }

    /// Spellings the OUSStatus reader accepts (brief §4: inferred from Castor binding names).
    static let ousStatus = """
        <?xml version="1.0" encoding="UTF-8"?>
        <sts:OUSStatus xmlns:sts="Alma/Scheduling/OUSStatus" xmlns:val="Alma/ValueTypes">
          <sts:OUSStatusEntity entityId="uid://A001/X1284/X265f"/>
          <sts:Session entityPartId="X100">
            <sts:ExecBlockRef ExecBlockId="uid://A002/Xc7111c/X3979"/>
            <sts:ExecBlockRef><val:ExecBlockId>uid___A002_Xc7111c_X409e</val:ExecBlockId></sts:ExecBlockRef>
            <sts:EndTime>2017-12-03 07:20:00.000</sts:EndTime>
          </sts:Session>
          <sts:Session entityPartId="X300">
            <sts:ExecBlockRef>uid://A002/Xc72427/X2dfe</sts:ExecBlockRef>
            <sts:EndTime>2017-12-06 04:15:00.000</sts:EndTime>
          </sts:Session>
          <sts:Session entityPartId="X200">
            <sts:ExecBlockRef entityId="uid://A002/Xc7111c/X86a7"/>
            <sts:EndTime>2017-12-05 05:10:00.000</sts:EndTime>
          </sts:Session>
        </sts:OUSStatus>
        """

    @Test func ousStatusXmlIsTheAuthority() throws {
        var entry = SeedMous.mousEntry()
        // AQUA rows now disagree (all in one session); the XML must win.
        for i in entry.execBlocks.indices { entry.execBlocks[i].sessionId = "\(SeedMous.mous)#S1" }
        entry.ousStatusXml = Self.ousStatus
        let assignment = try SessionMapping.compute(for: try SeedMous.record(entry))
        #expect(assignment.source == .ousStatusXml)
        #expect(assignment.sessions.map(\.id) == ["X100", "X200", "X300"])
        #expect(try numbers(entry) == [SeedMous.eb1: 1, SeedMous.eb2: 1, SeedMous.eb3: 2, SeedMous.eb4: 3])
    }

    @Test func ousStatusSessionWithoutEndTimeAndSessionTSpelling() throws {
        var entry = SeedMous.mousEntry()
        entry.ousStatusXml = """
            <OUSStatus>
              <SessionT entityPartId="Xb"><ExecBlockRef ExecBlockId="uid://A002/Xc7111c/X86a7"/><ExecBlockRef ExecBlockId="uid://A002/Xc72427/X2dfe"/></SessionT>
              <SessionT entityPartId="Xa"><ExecBlockRef ExecBlockId="uid://A002/Xc7111c/X3979"/><ExecBlockRef ExecBlockId="uid://A002/Xc7111c/X409e"/>
                <EndTime>2017-12-03 07:20:00.000</EndTime></SessionT>
            </OUSStatus>
            """
        // Xb has no EndTime: its EBs' latest end (2017-12-06T04:10) orders it after Xa.
        #expect(try numbers(entry) == [SeedMous.eb1: 1, SeedMous.eb2: 1, SeedMous.eb3: 2, SeedMous.eb4: 2])
    }

    @Test func ebInTwoSessionsTakesTheLowerNumber() throws {
        var entry = SeedMous.mousEntry()
        entry.ousStatusXml = Self.ousStatus.replacingOccurrences(
            of: "<sts:ExecBlockRef>uid://A002/Xc72427/X2dfe</sts:ExecBlockRef>",
            with:
                "<sts:ExecBlockRef>uid://A002/Xc72427/X2dfe</sts:ExecBlockRef><sts:ExecBlockRef>uid://A002/Xc7111c/X86a7</sts:ExecBlockRef>"
        )
        let assignment = try SessionMapping.compute(for: try SeedMous.record(entry))
        #expect(assignment.sessionNumber(of: AlmaUid(SeedMous.eb3)!) == 2)
        #expect(assignment.notes.contains { $0.contains(SeedMous.eb3) && $0.contains("sessions 2 and 3") })
    }

    @Test func ousStatusWithoutExecBlockRefsFallsBackToAqua() throws {
        var entry = SeedMous.mousEntry()
        entry.ousStatusXml =
            "<OUSStatus><Session entityPartId=\"X1\"><EndTime>2017-12-03 07:20:00.000</EndTime></Session></OUSStatus>"
        let assignment = try SessionMapping.compute(for: try SeedMous.record(entry))
        #expect(assignment.source == .aquaSessions)
        #expect(assignment.sessions.count == 3)
    }

    @Test func isDeterministicForTies() throws {
        var entry = SeedMous.mousEntry()
        entry.sessions = [
            SeedMous.session(2, start: nil, end: "2017-12-05T05:10:00Z"),
            SeedMous.session(1, start: nil, end: "2017-12-05T05:10:00Z"),
            SeedMous.session(3, start: nil, end: "2017-12-06T04:15:00Z"),
        ]
        let a = try SessionMapping.compute(for: try SeedMous.record(entry))
        entry.sessions?.swapAt(0, 1)
        let b = try SessionMapping.compute(for: try SeedMous.record(entry))
        #expect(a.sessions.map(\.id) == b.sessions.map(\.id))
        #expect(a.sessions.first?.id == "\(SeedMous.mous)#S1")
    }
}
