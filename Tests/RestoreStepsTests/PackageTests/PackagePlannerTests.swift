import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// PackagePlanner.plan on hand-built PackageContents (no file system).
@Suite(.tags(.unit)) struct PackagePlannerTests {
    static let member =
        "/pkgs/p/2017.1.00886.L/science_goal.uid___A001_X1284_X265d/group.uid___A001_X1284_X265e/member.uid___A001_X1284_X265f"
    static let ous = "uid___A001_X1284_X265f"
    static func disk(_ eb: String) -> String { AlmaUid(eb)!.sanitized }

    /// A manifest with `sessions` (name → EBs), as hifa_exportdata writes it.
    static func manifest(_ sessions: [(String, [String])]) throws -> PipelineManifest {
        var body = ""
        for (name, ebs) in sessions {
            body += "<session name=\"\(name)\"><caltables name=\"\(ous).\(name).caltables.tgz\"/>"
            for eb in ebs {
                let ms = disk(eb) + ".ms"
                body +=
                    "<asdm name=\"\(ms)\"><finalflags name=\"\(ms).flagversions.tgz\"/><applycmds name=\"\(ms).calapply.txt\"/></asdm>"
            }
            body += "</session>"
        }
        return try PipelineManifest.parse(
            """
            <?xml version="1.0" ?><piperesults name="\(ous)"><ous name="\(ous)"><pipeline_version name="2023.1.0.124"/>
            <casaversion name="6.5.4-9"/><procedure_name name="hifa_calimage"/>\(body)
            <aux_products_file name="\(ous).hifa_calimage.auxproducts.tgz"/></ous></piperesults>
            """)
    }

    /// Package files for the manifest's products, named `rename(name)`.
    static func calibrationFiles(
        _ m: PipelineManifest, rename: (String) -> String = { "member." + $0 }
    ) -> [String: String] {
        var names = ["member.\(ous).hifa_calimage.pipeline_manifest.xml"]
        for s in m.sessions {
            names += [s.caltables].compactMap { $0 }.map(rename)
            for a in s.asdms { names += [a.finalFlags, a.applyCmds].compactMap { $0 }.map(rename) }
        }
        return Dictionary(uniqueKeysWithValues: names.map { ($0, member + "/calibration/" + $0) })
    }

    static func contents(
        _ sessions: [(String, [String])] = [
            ("session_1", [SeedMous.eb1, SeedMous.eb2]), ("session_3", [SeedMous.eb4]),
        ],
        ppr: CalibrationPPR? = nil
    ) throws -> PackageContents {
        let m = try manifest(sessions)
        let ebs = sessions.flatMap(\.1)
        let asdms = Dictionary(
            uniqueKeysWithValues: ebs.map {
                (disk($0), AsdmSource(kind: .directory, path: member + "/raw/\(disk($0)).asdm.sdm", size: 10))
            })
        return PackageContents(
            location: "/pkgs/p", tree: MemberTree(path: member)!, calibrationFiles: calibrationFiles(m),
            scriptFiles: ["member.\(ous).scriptForPI.py": member + "/script/x"],
            asdms: asdms, manifest: .init(name: "member.\(ous).hifa_calimage.pipeline_manifest.xml", document: m),
            calibrationPPR: ppr.map { .init(name: "PPR_\(ous).pprequest.xml", document: $0) })
    }

    static func ppr(_ ebs: [String], ous: String = SeedMous.mous) -> CalibrationPPR {
        CalibrationPPR(
            proposalCode: "2017.1.00886.L", obsProject: AlmaUid("uid://A001/X1284/X2649"),
            obsUnitSetPartId: "X1583216498",
            title: "Orion", projectStatus: AlmaUid("uid://A001/X1284/X264a"), ousStatus: AlmaUid(ous),
            schedBlock: AlmaUid("uid://A001/X1284/X2660"), schedBlockStatus: AlmaUid("uid://A001/X1284/X2661"),
            schedBlockTitle: "Orion_a_06_TM1",
            asdms: ebs.map { PPRSummary.Asdm(execBlockId: $0, asdmDiskName: disk($0), session: "session_1") },
            sessionCount: 1)
    }

    func failure(
        _ contents: PackageContents, request: RestoreRequest = RestoreRequest(mous: SeedMous.mous)
    ) -> RestoreError? {
        do {
            _ = try PackagePlanner.plan(for: request, contents: contents)
            return nil
        } catch { return error }
    }

    @Test func sessionsNeverMentionedAreKeptEmpty() throws {
        let plan = try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: Self.contents())
        #expect(plan.sessions.sessions.map(\.id) == ["session_1", "session_2", "session_3"])
        #expect(plan.sessions.sessions.map(\.execBlocks.count) == [2, 0, 1])
        #expect(plan.sessions.notes.first?.contains("SESSION_2") == true, "\(plan.sessions.notes)")
        #expect(plan.execBlocks.map(\.sessionNumber) == [1, 1, 3])
        #expect(
            plan.execBlocks.map(\.uid.rawValue) == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb4],
            "manifest order without a PPR")
    }

    @Test func ebOrderComesFromTheCalibrationPPR() throws {
        let contents = try Self.contents(ppr: Self.ppr([SeedMous.eb4, SeedMous.eb2, SeedMous.eb1]))
        let plan = try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: contents)
        #expect(plan.execBlocks.map(\.uid.rawValue) == [SeedMous.eb4, SeedMous.eb2, SeedMous.eb1])
        #expect(plan.execBlocks.map(\.sessionNumber) == [3, 1, 1], "sessions still from the manifest")
        #expect(plan.package?.structureSource == "PPR_\(Self.ous).pprequest.xml")
        #expect(plan.record.schedBlock.uid.rawValue == "uid://A001/X1284/X2660")
        #expect(plan.record.obsProject.rawValue == "uid://A001/X1284/X2649")
        #expect(plan.package?.notes.contains { $0.contains("put \(SeedMous.eb4) in session_1") } == true)
    }

    @Test func aPPRListingOtherEBsIsNotedAndTheManifestOrderKept() throws {
        let contents = try Self.contents(ppr: Self.ppr([SeedMous.eb4, SeedMous.eb3]))
        let plan = try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: contents)
        #expect(plan.execBlocks.map(\.uid.rawValue) == [SeedMous.eb1, SeedMous.eb2, SeedMous.eb4])
        #expect(
            plan.package?.notes.contains { $0.contains("the manifest's are restored") && $0.contains(SeedMous.eb3) }
                == true)
    }

    @Test func placeholdersWithoutAPPR() throws {
        let plan = try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: Self.contents())
        let placeholder = "uid://A000/X0/X0"
        #expect(PackagePlanner.unknownUid.rawValue == placeholder)
        #expect(plan.record.obsProject.rawValue == placeholder)
        #expect(plan.record.projectStatus.rawValue == placeholder)
        #expect(
            plan.record.schedBlock.uid.rawValue == placeholder
                && plan.record.schedBlock.statusUid.rawValue == placeholder)
        #expect(
            plan.record.title == "Undefined" && plan.record.schedBlock.name == "Undefined"
                && plan.record.obsUnitSetPartId == "Undefined")
        #expect(plan.record.project == "2017.1.00886.L")
        #expect(
            plan.record.sous.rawValue == "uid://A001/X1284/X265d"
                && plan.record.gous.rawValue == "uid://A001/X1284/X265e")
        #expect(plan.package?.structureSource == "defaults")
        #expect(plan.package?.notes.contains { $0.contains("no pprequest.xml") } == true)
    }

    @Test func stagedProductsCarryTheManifestsNames() throws {
        var contents = try Self.contents()
        // Session 3's caltables in the compact form.
        contents.calibrationFiles.removeValue(forKey: "member.\(Self.ous).session_3.caltables.tgz")
        contents.calibrationFiles["member.\(Self.ous).s3.caltables.tgz"] =
            Self.member + "/calibration/member.\(Self.ous).s3.caltables.tgz"
        let plan = try PackagePlanner.plan(for: RestoreRequest(mous: SeedMous.mous), contents: contents)
        let products = try #require(plan.package?.products)
        let byName = Dictionary(uniqueKeysWithValues: products.map { ($0.name, $0.source) })
        #expect(
            byName["\(Self.ous).session_1.caltables.tgz"] == Self.member
                + "/calibration/member.\(Self.ous).session_1.caltables.tgz")
        #expect(
            byName["\(Self.ous).session_3.caltables.tgz"] == Self.member
                + "/calibration/member.\(Self.ous).s3.caltables.tgz")
        #expect(
            byName["\(Self.ous).hifa_calimage.pipeline_manifest.xml"] != nil, "the manifest is staged without member.")
        #expect(products.allSatisfy { !$0.name.hasPrefix("member.") })
        #expect(
            products.count == 1 + 2 + 3 * 2,
            "manifest + 2 caltables + 3 × (flags, applycmds); the aux tgz is optional and absent")
        #expect(plan.products.map(\.file.ngasFileId).sorted() == products.map(\.name).sorted())
        #expect(
            plan.package?.notes.contains { $0.contains("auxproducts.tgz") && $0.contains("does not need it") } == true)
    }

    @Test func refusals() throws {
        var manual = try Self.contents()
        manual.scriptFiles["member.\(Self.ous).scriptForCalibration.py"] = "/x"
        #expect(failure(manual)?.code == .manuallyCalibrated)

        var qaOnly = try Self.contents()
        qaOnly.manifest = nil
        qaOnly.calibrationFiles = [:]
        let noProducts = try #require(failure(qaOnly))
        #expect(noProducts.code == .noCalibrationProducts)
        #expect(noProducts.message.contains("only scriptForPI.py"))
        var noManifest = try Self.contents()
        noManifest.manifest = nil
        #expect(failure(noManifest)?.code == .noManifest)

        var noRaw = try Self.contents()
        noRaw.asdms.removeValue(forKey: Self.disk(SeedMous.eb2))
        let missing = try #require(failure(noRaw))
        #expect(missing.code == .missingAsdmFile)
        #expect(missing.message.contains(SeedMous.eb2))

        var truncated = try Self.contents()
        truncated.asdms[Self.disk(SeedMous.eb4)] = AsdmSource(
            kind: .tar, path: "/pkgs/p/x.asdm.sdm.tar", size: 1000,
            incomplete: "1000 bytes is not a whole number of 512-byte tar blocks")
        let short = try #require(failure(truncated))
        #expect(short.code == .packageFileTruncated)
        #expect(short.message.contains("x.asdm.sdm.tar") && short.message.contains("512-byte"))

        #expect(
            failure(try Self.contents(), request: RestoreRequest(mous: "uid://A001/X1284/X2700"))?.code
                == .packageWrongMous)
        // A calibration PPR for another OUS is not used (noted), and the restore goes on with the defaults.
        let foreign = try PackagePlanner.plan(
            for: RestoreRequest(mous: SeedMous.mous),
            contents: try Self.contents(ppr: Self.ppr([SeedMous.eb1], ous: "uid://A001/X1284/X2700")))
        #expect(foreign.package?.structureSource == "defaults")
        #expect(
            foreign.package?.notes.contains { $0.contains("uid://A001/X1284/X2700") && $0.contains("not used") } == true
        )
        #expect(foreign.record.obsProject == PackagePlanner.unknownUid)

        let badSession = try #require(
            failure(try Self.contents([("session_1", [SeedMous.eb1]), ("sessionB", [SeedMous.eb2])])))
        #expect(badSession.code == .packageInconsistent)
        #expect(badSession.message.contains("\"sessionB\""))

        var missingProduct = try Self.contents()
        missingProduct.calibrationFiles.removeValue(forKey: "member.\(Self.ous).session_1.caltables.tgz")
        #expect(failure(missingProduct)?.code == .manifestFileMissing)
    }

    @Test func eventFormFileSetIdsAreCheckedAgainstTheManifest() throws {
        var request = RestoreRequest(mous: SeedMous.mous)
        request.fileSetIds = [SeedMous.eb1, SeedMous.eb3]
        let error = try #require(failure(try Self.contents(), request: request))
        #expect(error.code == .fileSetMismatch)
        #expect(error.message.contains(SeedMous.eb3) && !error.message.contains("fileSetIds \(SeedMous.eb1)"))
        request.fileSetIds = [SeedMous.eb4, SeedMous.eb1]
        #expect(failure(try Self.contents(), request: request) == nil)
    }
}
