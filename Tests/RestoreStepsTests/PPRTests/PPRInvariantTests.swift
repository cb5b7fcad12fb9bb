import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct PPRInvariantTests {
    func written() throws -> (text: String, plan: RestorePlan, path: RelativePath) {
        let plan = try SeedMous.plan()
        let path = PPRGoldenTests.relativePath(plan)
        return (try PPRWriter.render(plan: plan, relativePath: path), plan, path)
    }

    /// Applies `corrupt` to a good PPR and expects the read-back check to fail with a violation containing `fragment`.
    func expectCaught(
        _ fragment: String, _ corrupt: (String) -> String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let (text, plan, path) = try written()
        let bad = corrupt(text)
        #expect(bad != text, "the corruption changed nothing", sourceLocation: sourceLocation)
        do {
            try PPRInvariants.verify(bad, plan: plan, relativePath: path)
            Issue.record("corrupted PPR passed the check", sourceLocation: sourceLocation)
        } catch {
            #expect(error.code == .pprInvariant, sourceLocation: sourceLocation)
            #expect(error.message.contains(fragment), "\(error.message)", sourceLocation: sourceLocation)
        }
    }

    @Test func aGoodPPRPasses() throws {
        let (text, plan, path) = try written()
        #expect(PPRInvariants.violations(text, plan: plan, relativePath: path) == [])
    }

    @Test func twoSchedBlockIdentifiers() throws {
        try expectCaught("rule 1: 2 SchedBlockIdentifier") { text in
            let start = text.range(of: "<SchedBlockIdentifier>")!.lowerBound
            let end = text.range(of: "</SchedBlockIdentifier>")!.upperBound
            return text.replacingCharacters(in: end..<end, with: "\n" + text[start..<end])
        }
    }

    @Test func twoSchedBlockSets() throws {
        try expectCaught("rule 1: 2 SchedBlockSet") { text in
            let start = text.range(of: "<SchedBlockSet>")!.lowerBound
            let end = text.range(of: "</SchedBlockSet>")!.upperBound
            return text.replacingCharacters(in: end..<end, with: "\n" + text[start..<end])
        }
    }

    @Test func whitespaceInAsdmDiskName() throws {
        try expectCaught(
            "rule 5: SciPipeRequest/ProcessingRequests/ProcessingRequest/DataSet/SchedBlockSet/SchedBlockIdentifier/AsdmIdentifier/AsdmDiskName has whitespace"
        ) {
            $0.replacingOccurrences(
                of: ">uid___A002_Xc7111c_X3979</AsdmDiskName>", with: ">\n    uid___A002_Xc7111c_X3979\n</AsdmDiskName>"
            )
        }
    }

    @Test func gapInSessionNumbers() throws {
        try expectCaught("expected SESSION_1…SESSION_3 without gaps") {
            $0.replacingOccurrences(of: ">SESSION_2<", with: ">SESSION_4<")
        }
        try expectCaught("the pipeline would put uid___A002_Xc7111c_X86a7 in session_1, the plan says session_2") {
            $0.replacingOccurrences(of: ">SESSION_1<", with: ">SESSION_0<").replacingOccurrences(
                of: ">SESSION_0<", with: ">PROCESS<")
        }
    }

    @Test func lowerCaseOrDuplicateSessionKeyword() throws {
        try expectCaught("is not SESSION_<n> in upper case") {
            $0.replacingOccurrences(of: ">SESSION_3<", with: ">session_3<")
        }
        try expectCaught("SESSION_2 appears twice") { $0.replacingOccurrences(of: ">SESSION_3<", with: ">SESSION_2<") }
    }

    @Test func pipeWithoutSpaces() throws {
        try expectCaught("rule 6") {
            $0.replacingOccurrences(
                of: "uid___A002_Xc7111c_X3979 | uid___A002_Xc7111c_X409e",
                with: "uid___A002_Xc7111c_X3979|uid___A002_Xc7111c_X409e")
        }
    }

    @Test func asdmSuffixOrWrongDiskName() throws {
        try expectCaught("rule 7: AsdmDiskName \"uid___A002_Xc7111c_X3979.asdm.sdm\"") {
            $0.replacingOccurrences(
                of: ">uid___A002_Xc7111c_X3979</AsdmDiskName>",
                with: ">uid___A002_Xc7111c_X3979.asdm.sdm</AsdmDiskName>")
        }
    }

    @Test func absoluteRelativePath() throws {
        try expectCaught("rule 2: RelativePath \"/data/") {
            $0.replacingOccurrences(of: "<RelativePath xmlns=\"\">", with: "<RelativePath xmlns=\"\">/data/")
        }
    }

    @Test func missingExecBlockId() throws {
        try expectCaught("rule 3: AsdmIdentifier 1 has no AsdmRef/ExecBlockId") {
            $0.replacingOccurrences(of: "<ns6:ExecBlockId>uid://A002/Xc7111c/X3979</ns6:ExecBlockId>", with: "")
        }
    }

    @Test func undeclaredPrefix() throws {
        try expectCaught("rule 10") { $0.replacingOccurrences(of: " xmlns:ns6=\"Alma/ValueTypes\"", with: "") }
    }

    @Test func commentInsideALeaf() throws {
        try expectCaught("contains a comment node") {
            $0.replacingOccurrences(of: ">SESSION_1<", with: ">SESSION_1<!-- x --><")
        }
    }

    @Test func commandWithoutParameterSetAndEmptyMousRef() throws {
        try expectCaught("has no ParameterSet") { text in
            let start = text.range(of: "<ParameterSet>")!.lowerBound
            let end = text.range(of: "</ParameterSet>")!.upperBound
            return text.replacingCharacters(in: start..<end, with: "")
        }
        try expectCaught("OUSStatusRef@entityId is missing or empty") {
            $0.replacingOccurrences(of: "entityId=\"uid://A001/X1284/X265f\"", with: "entityId=\"\"")
        }
    }

    @Test func numericLookingValue() throws {
        try expectCaught("rule 8") {
            $0.replacingOccurrences(of: ">uid___A002_Xc72427_X2dfe</Value>", with: ">12345</Value>")
        }
    }

    @Test func writeChecksThenWritesAtomically() throws {
        let plan = try SeedMous.plan()
        let path = PPRGoldenTests.relativePath(plan)
        let file = try SeedMous.temporaryDirectory().appendingPathComponent(PPRWriter.fileName(for: plan))
        #expect(file.lastPathComponent == "PPR_uid___A001_X1284_X265f.xml")
        let text = try PPRWriter.write(plan: plan, relativePath: path, to: file)
        #expect(try String(contentsOf: file, encoding: .utf8) == text)
        // A plan the writer cannot honour is refused before anything is written (here: a SESSION value that
        // would be cast, because the uid was tampered with after planning).
        var broken = plan
        broken.execBlocks[0].asdmDiskName = AsdmDiskName("uid___A002_Xc7111c_X1")!
        let other = file.deletingLastPathComponent().appendingPathComponent("other.xml")
        #expect(throws: RestoreError.self) { try PPRWriter.write(plan: broken, relativePath: path, to: other) }
        #expect(!FileManager.default.fileExists(atPath: other.path))
    }
}

@Suite(.tags(.unit)) struct PPRSummaryTests {
    @Test func readsSessionsThePipelineWay() throws {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[2].qa0 = "Fail"
        let plan = try SeedMous.plan(entry)
        let text = try PPRWriter.render(plan: plan, relativePath: PPRGoldenTests.relativePath(plan))
        let summary = try PPRSummary.read(text)
        #expect(summary.proposalCode == "2017.1.00886.L")
        #expect(summary.ousStatusEntityId == SeedMous.mous)
        #expect(summary.relativePath == PPRGoldenTests.relativePath(plan).rawValue)
        #expect(summary.procedureTitle == "hifa_restore")
        #expect(summary.commands == ["hifa_restoredata"])
        #expect(summary.sessionCount == 3)
        #expect(
            summary.asdms.map(\.asdmDiskName) == [
                "uid___A002_Xc7111c_X3979", "uid___A002_Xc7111c_X409e", "uid___A002_Xc72427_X2dfe",
            ])
        #expect(summary.asdms.map(\.session) == ["session_1", "session_1", "session_3"])
        #expect(summary.asdms.map(\.execBlockId) == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb4])
    }

    @Test func missingSession1PutsEverythingInSession1() throws {
        let plan = try SeedMous.plan()
        let text = try PPRWriter.render(plan: plan, relativePath: PPRGoldenTests.relativePath(plan))
            .replacingOccurrences(of: ">SESSION_1<", with: ">SESSION_9<")
        let summary = try PPRSummary.read(text)
        #expect(summary.sessionCount == 0)
        #expect(Set(summary.asdms.map(\.session)) == ["session_1"])
    }

    @Test func stripsMSSuffixesLikeTheCurrentPipeline() {
        #expect(PPRSummary.sanitizeForMS("uid___A002_X1_X2_target.ms") == "uid___A002_X1_X2")
        #expect(PPRSummary.sanitizeForMS("uid___A002_X1_X2_target.ms_target.ms.ms") == "uid___A002_X1_X2")
        #expect(PPRSummary.sanitizeForMS("uid___A002_X1_X2.asdm.sdm") == "uid___A002_X1_X2.asdm.sdm")
    }
}

@Suite(.tags(.unit)) struct CastabilityTests {
    @Test(arguments: ["12", "1.5", "1e5", "nan", "inf", "TRUE", "false", "1_000", "[1,2]", "(1)", "{}"])
    func valuesThePipelineWouldCast(_ text: String) {
        #expect(PPRInvariants.looksCastable(text))
    }

    @Test(arguments: ["uid://A002/X1/X2", "uid___A002_X1_X2", "2017.1.00886.L", "ca", "None", "1,2,3", "a/b"])
    func valuesThatStayStrings(_ text: String) {
        #expect(!PPRInvariants.looksCastable(text))
    }
}
