import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct RestoreMetadataTests {
    @Test func roundTripsAndSaysWhatIsRestored() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[2].qa0 = "Fail"
        let plan = try SeedMous.plan(entry)
        let request = RestoreRequest(
            form: .workflowEvent, mous: SeedMous.mous, requestId: "corr-1", email: ["pi@example.org"],
            fileSetIds: [SeedMous.eb1], projectCode: SeedMous.project)
        let time = UTCTime(parsing: "2026-01-02T03:04:05Z")!.date
        let metadata = RestoreMetadata(
            request: request, plan: plan, relativePath: RelativePath(plan: plan, time: time), agentVersion: "0.1.0",
            createdAt: time)
        let data = try metadata.encoded()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"schema\" : \"dropbox-agent/metadata/v1\""))
        #expect(text.contains("\"createdAt\" : \"2026-01-02T03:04:05Z\""))
        #expect(
            text.contains("\"relativePath\" : \"2017.1.00886.L_2026_01_02T03_04_05.000/SOUS_uid___A001_X1284_X265d/"))
        let back = try RestoreMetadata.decode(data)
        #expect(back == metadata)
        #expect(back.plan == plan)
        #expect(back.execBlocks.map(\.restored) == [true, true, false, true])
        #expect(back.execBlocks.map(\.sessionName) == ["session_1", "session_1", "session_2", "session_3"])
        #expect(back.execBlocks[2].asdm == nil)
        #expect(back.totalBytes == plan.totalBytes)
        #expect(back.products.map(\.file.ngasFileId) == plan.products.map(\.file.ngasFileId))
        var wrong = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        wrong["schema"] = "other"
        #expect(throws: DecodingError.self) {
            try RestoreMetadata.decode(try JSONSerialization.data(withJSONObject: wrong))
        }
    }
}
