import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// Golden PPRs for the seed MOUS (sessions and refs invented, see ``SeedMous``), compared byte for byte after
/// normalising `CreationTime`. To regenerate after an intended change: `DROPBOX_UPDATE_GOLDEN=1 swift test
/// --filter PPRGoldenTests`, then inspect the diff by eye against brief §3 before committing.
@Suite(.tags(.unit)) struct PPRGoldenTests {
    static let goldenDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Golden")
    static let restoreTime = UTCTime(parsing: "2026-01-02T03:04:05.678Z")!.date

    static func relativePath(_ plan: RestorePlan) -> RelativePath { RelativePath(plan: plan, time: restoreTime) }

    static func normalised(_ text: String) -> String {
        text.replacingOccurrences(
            of: #"<CreationTime xmlns="">[^<]*</CreationTime>"#,
            with: #"<CreationTime xmlns="">NORMALISED</CreationTime>"#,
            options: .regularExpression)
    }

    func compare(_ name: String, _ entry: CatalogueImportFile.Mous) throws {
        let plan = try SeedMous.plan(entry)
        let path = Self.relativePath(plan)
        let text = try PPRWriter.render(plan: plan, relativePath: path, creationTime: Date())
        try PPRInvariants.verify(text, plan: plan, relativePath: path)
        let url = Self.goldenDirectory.appendingPathComponent("\(name).xml")
        if ProcessInfo.processInfo.environment["DROPBOX_UPDATE_GOLDEN"] == "1" {
            try Data(Self.normalised(text).utf8).write(to: url)
        }
        guard let golden = try? String(contentsOf: url, encoding: .utf8) else {
            Issue.record("golden file \(url.path) is missing: run with DROPBOX_UPDATE_GOLDEN=1, inspect it, commit it")
            return
        }
        #expect(Self.normalised(text) == golden, "PPR differs from \(url.lastPathComponent)")
    }

    @Test func seedMousThreeSessions() throws {
        try compare("seed-three-sessions", SeedMous.mousEntry())
    }

    @Test func seedMousOneSession() throws {
        var entry = SeedMous.mousEntry()
        entry.sessions = [SeedMous.session(1, start: "2017-12-03T05:00:00Z", end: "2017-12-06T04:15:00Z")]
        for i in entry.execBlocks.indices { entry.execBlocks[i].sessionId = "\(SeedMous.mous)#S1" }
        try compare("seed-one-session", entry)
    }

    @Test func emptySession1() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[0].qa0 = "Fail"
        entry.execBlocks[1].qa0 = "SemiPass"
        try compare("seed-empty-session-1", entry)
    }

    @Test func nullEndTime() throws {
        var entry = SeedMous.mousEntry()
        entry.sessions?[0].endTime = nil  // ordered by its EBs' latest end time: still SESSION_1
        entry.sessions?[1].endTime = nil
        entry.sessions?[1].startTime = "2017-12-07T00:00:00Z"
        entry.execBlocks[2].endTime = nil  // S2: no EB end time either -> its start time, after S3
        try compare("seed-null-end-time", entry)
    }

    @Test func failedEBBetweenTwoPassEBs() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[2].qa0 = "Fail"
        try compare("seed-failed-between-pass", entry)
    }

    @Test func creationTimeIsTheOnlyVaryingField() throws {
        let plan = try SeedMous.plan()
        let path = Self.relativePath(plan)
        let a = try PPRWriter.render(plan: plan, relativePath: path, creationTime: Date(timeIntervalSince1970: 0))
        let b = try PPRWriter.render(plan: plan, relativePath: path, creationTime: Date(timeIntervalSince1970: 1e9))
        #expect(a != b)
        #expect(a.contains("<CreationTime xmlns=\"\">1970-01-01T00:00:00.000</CreationTime>"))
        #expect(Self.normalised(a) == Self.normalised(b))
    }
}
