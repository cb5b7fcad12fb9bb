import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct RestorabilityTests {
    func refusal(
        _ entry: CatalogueImportFile.Mous, request: RestoreRequest = RestoreRequest(mous: SeedMous.mous),
        now: Date = SeedMous.now, allowProprietary: Bool = false
    ) throws -> RestoreError? {
        let record = try SeedMous.record(entry)
        do {
            _ = try Restorability.plan(for: request, record: record, now: now, allowProprietary: allowProprietary)
            return nil
        } catch {
            return error
        }
    }

    @Test func plansTheSeedMous() throws {
        let plan = try SeedMous.plan()
        #expect(plan.execBlocks.map(\.uid.rawValue) == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb3, SeedMous.eb4])
        #expect(plan.execBlocks.map(\.sessionNumber) == [1, 1, 2, 3])
        #expect(
            plan.execBlocks.map(\.asdmDiskName.rawValue) == [
                "uid___A002_Xc7111c_X3979", "uid___A002_Xc7111c_X409e", "uid___A002_Xc7111c_X86a7",
                "uid___A002_Xc72427_X2dfe",
            ])
        let ids = plan.products.map(\.file.ngasFileId)
        #expect(ids.contains("uid___A001_X1284_X265f.hifa_calimage.pipeline_manifest.xml"))
        #expect(ids.contains("member.uid___A001_X1284_X265f.scriptForPI.py"))
        #expect(!ids.contains { $0.hasSuffix("product_ingestor.xml") || $0.hasSuffix("product_rename.txt") })
        #expect(!ids.contains { $0.hasSuffix(".fits") || $0.hasSuffix(".pdf") })
        #expect(ids == ids.sorted())
        let expectedBytes =
            plan.products.reduce(Int64(0)) { $0 + $1.file.size }
            + plan.execBlocks.reduce(Int64(0)) { $0 + $1.asdm.size }
        #expect(plan.totalBytes == expectedBytes)
        #expect(
            plan.sessionIntents.map(\.value) == [
                "\(disk(SeedMous.eb1)) | \(disk(SeedMous.eb2))", disk(SeedMous.eb3), disk(SeedMous.eb4),
            ])
    }

    @Test func unknownAndInvalidMous() throws {
        #expect(throws: RestoreError.self) {
            try Restorability.plan(
                for: RestoreRequest(mous: SeedMous.mous), record: nil, now: SeedMous.now, allowProprietary: false)
        }
        do {
            _ = try Restorability.plan(
                for: RestoreRequest(mous: SeedMous.mous), record: nil, now: SeedMous.now, allowProprietary: false)
            Issue.record("unknown MOUS accepted")
        } catch { #expect(error.code == .unknownMous) }
        let record = try SeedMous.record()
        do {
            _ = try Restorability.plan(
                for: RestoreRequest(mous: "uid://A001/X1284/../X265f"), record: record, now: SeedMous.now,
                allowProprietary: false)
            Issue.record("invalid uid accepted")
        } catch { #expect(error.code == .invalidUid) }
    }

    @Test func noCalibrationProducts() throws {
        var entry = SeedMous.mousEntry()
        entry.products.removeAll { $0.fileClass == "calibration" }
        #expect(try refusal(entry)?.code == .noCalibrationProducts)
    }

    @Test func noScienceProducts() throws {
        var entry = SeedMous.mousEntry()
        entry.products.removeAll { $0.fileClass == "science" }
        let error = try #require(try refusal(entry))
        #expect(error.code == .noScienceProducts)
        #expect(error.message.contains("not official until the images are archived"))
    }

    @Test(arguments: [
        "member.uid___A001_X1284_X265f.scriptForCalibration.py", "uid___A001_X1284_X265f.SCRIPTFORPI_cal.py",
        "scriptforfluxcal.py",
    ])
    func manuallyCalibrated(_ script: String) throws {
        var entry = SeedMous.mousEntry()
        entry.products.append(SeedMous.product("script", script))
        let error = try #require(try refusal(entry))
        #expect(error.code == .manuallyCalibrated)
        #expect(error.message.contains(script))
    }

    @Test func scriptsThatAreNotManualCalibrationAreFine() {
        #expect(!Restorability.isManualCalibrationScript("member.uid___A001_X1284_X265f.scriptForPI.py"))
        #expect(
            !Restorability.isManualCalibrationScript("uid___A001_X1284_X265f.hifa_calimage.casa_piperestorescript.py"))
        // "cal" must come after "scriptFor"
        #expect(!Restorability.isManualCalibrationScript("calibration_scriptFor.py"))
        #expect(Restorability.isManualCalibrationScript("x.scriptForImaging.and.cal.py"))
    }

    @Test func noManifest() throws {
        var entry = SeedMous.mousEntry()
        entry.products.removeAll { $0.ngasFileId.hasSuffix("pipeline_manifest.xml") }
        #expect(try refusal(entry)?.code == .noManifest)
    }

    @Test func noPassExecBlock() throws {
        var entry = SeedMous.mousEntry()
        for i in entry.execBlocks.indices { entry.execBlocks[i].qa0 = ["SemiPass", "Fail", "Unset", "Pending"][i] }
        let error = try #require(try refusal(entry))
        #expect(error.code == .noPassExecBlock)
        #expect(error.message.contains("\(SeedMous.eb1) SemiPass"))
    }

    @Test func proprietaryUnlessAllowed() throws {
        var entry = SeedMous.mousEntry()
        entry.releaseDate = "2026-06-01T00:00:00Z"
        let error = try #require(try refusal(entry))
        #expect(error.code == .proprietary)
        #expect(error.message.contains("until 2026-06-01T00:00:00Z"))
        #expect(try refusal(entry, allowProprietary: true) == nil)
        #expect(try refusal(entry, now: UTCTime(parsing: "2026-06-01T00:00:01Z")!.date) == nil)
        entry.releaseDate = nil  // unknown is not "in the future" (documented choice)
        #expect(try refusal(entry) == nil)
    }

    @Test func eventFormCrossChecks() throws {
        let entry = SeedMous.mousEntry()
        let wrongProject = RestoreRequest(
            form: .workflowEvent, mous: SeedMous.mous, fileSetIds: [SeedMous.eb1], projectCode: "2017.1.00370.S")
        #expect(try refusal(entry, request: wrongProject)?.code == .projectMismatch)
        let wrongEB = RestoreRequest(
            form: .workflowEvent, mous: SeedMous.mous, fileSetIds: [SeedMous.eb1, "uid://A002/Xd248b5/Xa7a"],
            projectCode: SeedMous.project)
        let error = try #require(try refusal(entry, request: wrongEB))
        #expect(error.code == .fileSetMismatch)
        #expect(error.message.contains("uid://A002/Xd248b5/Xa7a"))
        #expect(!error.message.hasPrefix("fileSetIds \(SeedMous.eb1)"))
        let good = RestoreRequest(
            form: .workflowEvent, mous: SeedMous.mous, fileSetIds: ["uid___A002_Xc7111c_X3979", SeedMous.eb4],
            projectCode: SeedMous.project)
        #expect(try refusal(entry, request: good) == nil)
    }

    @Test func missingAsdmFile() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[2].asdm = nil
        let error = try #require(try refusal(entry))
        #expect(error.code == .missingAsdmFile)
        #expect(error.message.contains(SeedMous.eb3))
        entry.execBlocks[2].qa0 = "Fail"  // a Failed EB needs no ASDM
        #expect(try refusal(entry) == nil)
    }

    @Test func passEBWithoutSessionIsRefused() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[3].sessionId = nil
        let error = try #require(try refusal(entry))
        #expect(error.code == .inconsistentMetadata)
        #expect(error.message.contains(SeedMous.eb4))
    }

    @Test func onlyPassEBsAreRestored() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[1].qa0 = "SemiPass"
        let plan = try SeedMous.plan(entry)
        #expect(plan.execBlocks.map(\.uid.rawValue) == [SeedMous.eb1, SeedMous.eb3, SeedMous.eb4])
        #expect(plan.sessionIntents.map(\.value) == [disk(SeedMous.eb1), disk(SeedMous.eb3), disk(SeedMous.eb4)])
    }
}

@Suite(.tags(.unit)) struct RestorabilityOUSStatusTests {
    @Test func passEBMissingFromTheOUSStatusSessionsIsRefused() throws {
        var entry = SeedMous.mousEntry()
        entry.ousStatusXml = SessionMappingTests.ousStatus.replacingOccurrences(
            of: "<sts:ExecBlockRef entityId=\"uid://A002/Xc7111c/X86a7\"/>", with: "")
        do {
            _ = try SeedMous.plan(entry)
            Issue.record("a Pass EB without session was planned")
        } catch let error as RestoreError {
            #expect(error.code == .inconsistentMetadata)
            #expect(
                error.message
                    == "QA0-Pass EB uid://A002/Xc7111c/X86a7 of MOUS uid://A001/X1284/X265f is in no Session of the OUSStatus XML; the pipeline would silently put it in session_1"
            )
        }
        // The same EB with QA0 Fail is simply not restored; the XML session without it keeps its number.
        entry.execBlocks[2].qa0 = "Fail"
        let plan = try SeedMous.plan(entry)
        #expect(plan.execBlocks.map(\.sessionName) == ["session_1", "session_1", "session_3"])
        #expect(
            plan.sessionIntents.map(\.value) == [
                "\(disk(SeedMous.eb1)) | \(disk(SeedMous.eb2))", "", disk(SeedMous.eb4),
            ])
    }

    @Test func numericProjectCodesAreRefusedAtImport() {
        var entry = SeedMous.mousEntry()
        entry.project = "2017.1"
        #expect(SeedMous.file([entry]).validate().map(\.path) == ["$.mouses[0].project"])
    }
}

@Suite(.tags(.unit)) struct RestorabilityForeignSourceTests {
    /// A MetadataSource other than our catalogue may hand back anything; unsafe file ids must not pass.
    @Test func unsafeFileIdsFromAnotherSourceAreRefused() throws {
        var record = try SeedMous.record()
        record.products[0].file.ngasFileId = "../../etc/passwd"
        do {
            _ = try Restorability.plan(
                for: RestoreRequest(mous: SeedMous.mous), record: record, now: SeedMous.now, allowProprietary: false)
            Issue.record("unsafe file id accepted")
        } catch {
            #expect(error.code == .inconsistentMetadata)
            #expect(error.message.contains("../../etc/passwd"))
        }
    }

    struct FixedSource: MetadataSource {
        let record: MousRecord
        func mous(_ uid: String) throws -> MousRecord? { uid == record.mous.rawValue ? record : nil }
    }

    @Test func asyncLookUpAndPlanSummary() async throws {
        let source = FixedSource(record: try SeedMous.record())
        let record = try #require(try await source.record(for: SeedMous.mous))
        #expect(try await source.record(for: "uid://A001/X1/X2") == nil)
        let plan = try Restorability.plan(
            for: RestoreRequest(mous: SeedMous.mous), record: record, now: SeedMous.now, allowProprietary: false)
        let lines = plan.summaryLines
        #expect(lines.contains("  SESSION_1 = \(disk(SeedMous.eb1)) | \(disk(SeedMous.eb2))"))
        #expect(
            lines.contains(
                "  \(SeedMous.eb4) -> rawdata/uid___A002_Xc72427_X2dfe (session_3, uid___A002_Xc72427_X2dfe.asdm.sdm.tar.gz, \(plan.execBlocks[3].asdm.size) bytes)"
            ))
        #expect(lines.last == "total \(plan.totalBytes) bytes")
    }
}

/// An EB uid as SESSION_n values spell it: the sanitised form (`uid___A002_Xc7111c_X3979`).
func disk(_ uid: String) -> String {
    uid.replacingOccurrences(of: ":", with: "_").replacingOccurrences(of: "/", with: "_")
}
