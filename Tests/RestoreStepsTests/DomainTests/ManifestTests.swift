import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// A manifest as hifa_exportdata writes it, for `plan`'s EBs and sessions.
func manifestXML(for plan: RestorePlan, casa: String = "5.1.1-5") -> String {
    let oussid = plan.mous.sanitized
    var sessions = ""
    for number in Set(plan.execBlocks.map(\.sessionNumber)).sorted() {
        sessions +=
            "    <session name=\"session_\(number)\">\n      <caltables name=\"\(oussid).session_\(number).caltables.tgz\"/>\n"
        for eb in plan.execBlocks where eb.sessionNumber == number {
            let ms = eb.asdmDiskName.msName
            sessions +=
                "      <asdm name=\"\(ms)\">\n        <finalflags name=\"\(ms).flagversions.tgz\"/>\n        <applycmds name=\"\(ms).calapply.txt\"/>\n      </asdm>\n"
        }
        sessions += "    </session>\n"
    }
    return """
        <?xml version="1.0" ?>
        <piperesults name="\(oussid)">
          <ous name="\(oussid)">
            <pipeline_version name="40896M (Pipeline-CASA51-P2-B)"/>
            <casaversion name="\(casa)"/>
            <procedure_name name="hifa_calimage"/>
            <execution_environment><node num_mpi_servers="0"/></execution_environment>
        \(sessions)    <aux_products_file name="\(oussid).hifa_calimage.auxproducts.tgz"/>
          </ous>
        </piperesults>
        """
}

/// Stages every product of `plan` (empty files) in a fresh directory.
func stagedProducts(for plan: RestorePlan) throws -> URL {
    let dir = try SeedMous.temporaryDirectory()
    for product in plan.products {
        _ = FileManager.default.createFile(
            atPath: dir.appendingPathComponent(product.file.ngasFileId).path, contents: Data())
    }
    return dir
}

@Suite(.tags(.unit)) struct PipelineManifestTests {
    @Test func parsesWhatHifaRestoredataReads() throws {
        let plan = try SeedMous.plan()
        let manifest = try PipelineManifest.parse(manifestXML(for: plan))
        #expect(manifest.ousName == "uid___A001_X1284_X265f")
        #expect(manifest.casaVersion == "5.1.1-5")
        #expect(manifest.pipelineVersion == "40896M (Pipeline-CASA51-P2-B)")
        #expect(manifest.procedureName == "hifa_calimage")
        #expect(manifest.auxProductsFile == "uid___A001_X1284_X265f.hifa_calimage.auxproducts.tgz")
        #expect(manifest.sessions.map(\.name) == ["session_1", "session_2", "session_3"])
        #expect(manifest.sessions[0].caltables == "uid___A001_X1284_X265f.session_1.caltables.tgz")
        #expect(
            manifest.sessions[0].asdms.map(\.name) == ["uid___A002_Xc7111c_X3979.ms", "uid___A002_Xc7111c_X409e.ms"])
        #expect(manifest.sessions[0].asdms[0].finalFlags == "uid___A002_Xc7111c_X3979.ms.flagversions.tgz")
        #expect(manifest.sessions[0].asdms[0].applyCmds == "uid___A002_Xc7111c_X3979.ms.calapply.txt")
    }

    @Test func parsesAFileAndRefusesNonManifests() throws {
        let plan = try SeedMous.plan()
        let file = try SeedMous.temporaryDirectory().appendingPathComponent("m.pipeline_manifest.xml")
        try Data(manifestXML(for: plan).utf8).write(to: file)
        #expect(try PipelineManifest.parse(file: file.path).sessions.count == 3)
        for (xml, fragment) in [
            ("<SciPipeRequest/>", "expected <piperesults>"), ("<piperesults/>", "no <ous>"),
            ("<piperesults><ous>", "not well-formed"),
            ("<!DOCTYPE p [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><piperesults>&x;</piperesults>", "DOCTYPE"),
        ] {
            do {
                _ = try PipelineManifest.parse(xml)
                Issue.record("accepted \(xml)")
            } catch {
                #expect(error.code == .manifestUnreadable)
                #expect(error.message.contains(fragment), "\(error.message)")
            }
        }
        #expect(throws: RestoreError.self) {
            try PipelineManifest.parse(file: file.deletingLastPathComponent().appendingPathComponent("absent.xml").path)
        }
    }

    @Test func selectsTheManifestLikeTheTask() {
        #expect(PipelineManifest.select(from: ["a.txt"]) == nil)
        #expect(
            PipelineManifest.select(from: ["x.hifa_image.pipeline_manifest.xml"])
                == "x.hifa_image.pipeline_manifest.xml")
        #expect(
            PipelineManifest.select(from: [
                "b.hifa_image.pipeline_manifest.xml", "z.hifa_calimage.pipeline_manifest.xml",
                "a.hif_x.pipeline_manifest.xml",
            ])
                == "z.hifa_calimage.pipeline_manifest.xml")
        #expect(
            PipelineManifest.select(from: ["b.pipeline_manifest.xml", "a.pipeline_manifest.xml"])
                == "a.pipeline_manifest.xml")
        #expect(
            PipelineManifest.select(from: ["y.hifa_cal.pipeline_manifest.xml", "x.hifa_calimage.pipeline_manifest.xml"])
                == "x.hifa_calimage.pipeline_manifest.xml")
    }
}

@Suite(.tags(.unit)) struct ManifestCrossCheckTests {
    func check(_ xml: String, plan: RestorePlan, staged: URL) throws -> RestoreError? {
        let manifest = try PipelineManifest.parse(xml)
        do {
            try ManifestCrossCheck.check(
                manifest: manifest, manifestName: "uid___A001_X1284_X265f.hifa_calimage.pipeline_manifest.xml",
                plan: plan, stagedFiles: staged)
            return nil
        } catch {
            return error
        }
    }

    @Test func acceptsAConsistentManifest() throws {
        let plan = try SeedMous.plan()
        #expect(try check(manifestXML(for: plan), plan: plan, staged: try stagedProducts(for: plan)) == nil)
    }

    @Test func missingSessionCaltablesIsNamedPrecisely() throws {
        let plan = try SeedMous.plan()
        // The manifest was made with EB3 in session_1, so there is no session_2.
        let xml = manifestXML(for: plan)
            .replacingOccurrences(
                of:
                    "    <session name=\"session_2\">\n      <caltables name=\"uid___A001_X1284_X265f.session_2.caltables.tgz\"/>\n",
                with: ""
            )
            .replacingOccurrences(
                of: "      </asdm>\n    </session>\n      <asdm name=\"uid___A002_Xc7111c_X86a7.ms\">",
                with: "      </asdm>\n      <asdm name=\"uid___A002_Xc7111c_X86a7.ms\">")
        let error = try #require(try check(xml, plan: plan, staged: try stagedProducts(for: plan)))
        #expect(error.code == .manifestMissingSession)
        #expect(
            error.message.hasPrefix(
                "manifest uid___A001_X1284_X265f.hifa_calimage.pipeline_manifest.xml has no <session name=\"session_2\"> with caltables, but EB uid://A002/Xc7111c/X86a7 is in SESSION_2 (the pipeline would stop with KeyError: 'session_2')"
            ))
        #expect(error.message.contains("puts uid___A002_Xc7111c_X86a7.ms in <session name=\"session_1\">"))
    }

    @Test func sessionWithoutCaltables() throws {
        let plan = try SeedMous.plan()
        let xml = manifestXML(for: plan).replacingOccurrences(
            of: "<caltables name=\"uid___A001_X1284_X265f.session_3.caltables.tgz\"/>", with: "")
        let error = try #require(try check(xml, plan: plan, staged: try stagedProducts(for: plan)))
        #expect(error.code == .manifestMissingSession)
        #expect(error.message.contains("a <session name=\"session_3\"> without <caltables>"))
    }

    @Test func missingFinalFlags() throws {
        let plan = try SeedMous.plan()
        let xml = manifestXML(for: plan).replacingOccurrences(
            of: "<finalflags name=\"uid___A002_Xc7111c_X409e.ms.flagversions.tgz\"/>", with: "")
        let error = try #require(try check(xml, plan: plan, staged: try stagedProducts(for: plan)))
        #expect(error.code == .manifestIncompleteAsdm)
        #expect(
            error.message
                == "manifest uid___A001_X1284_X265f.hifa_calimage.pipeline_manifest.xml: <asdm name=\"uid___A002_Xc7111c_X409e.ms\"> (EB uid://A002/Xc7111c/X409e) has no finalflags; its flags/calibration cannot be restored"
        )
    }

    @Test func fileAbsentFromStagedProducts() throws {
        let plan = try SeedMous.plan()
        let staged = try stagedProducts(for: plan)
        try FileManager.default.removeItem(
            at: staged.appendingPathComponent("uid___A002_Xc72427_X2dfe.ms.calapply.txt"))
        let error = try #require(try check(manifestXML(for: plan), plan: plan, staged: staged))
        #expect(error.code == .manifestFileMissing)
        #expect(
            error.message
                == "uid___A002_Xc72427_X2dfe.ms.calapply.txt (applycmds of uid___A002_Xc72427_X2dfe.ms, named in manifest uid___A001_X1284_X265f.hifa_calimage.pipeline_manifest.xml) is not among the staged products in \(staged.path)"
        )
    }

    @Test func passEBAbsentFromManifestAndExtraAsdm() throws {
        let plan = try SeedMous.plan()
        var fewer = plan
        fewer.execBlocks.removeLast()
        let withoutEB4 = manifestXML(for: fewer)
        let error = try #require(try check(withoutEB4, plan: plan, staged: try stagedProducts(for: plan)))
        #expect(error.code == .manifestMissingSession)  // session_3 only held EB4
        #expect(error.message.contains("QA0-Pass EB(s) uid://A002/Xc72427/X2dfe have no <asdm> in manifest"))
        // The other way round: the manifest has an EB the catalogue does not consider Pass.
        let extra = try #require(try check(manifestXML(for: plan), plan: fewer, staged: try stagedProducts(for: plan)))
        #expect(extra.code == .manifestExtraAsdm)
        #expect(extra.message.contains("uid___A002_Xc72427_X2dfe.ms, which is not a QA0-Pass EB"))
    }

    @Test func wrongOus() throws {
        let plan = try SeedMous.plan()
        let xml = manifestXML(for: plan).replacingOccurrences(
            of: "<ous name=\"uid___A001_X1284_X265f\">", with: "<ous name=\"uid___A001_X1284_X2700\">")
        #expect(try check(xml, plan: plan, staged: try stagedProducts(for: plan))?.code == .manifestWrongOus)
    }
}

@Suite(.tags(.unit)) struct ManifestLocationTests {
    @Test func findsTheCalibrationManifestInADirectory() throws {
        let dir = try SeedMous.temporaryDirectory()
        for name in ["b.hifa_image.pipeline_manifest.xml", "a.hifa_calimage.pipeline_manifest.xml", "a.caltables.tgz"] {
            _ = FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data())
        }
        #expect(try PipelineManifest.select(in: dir)?.lastPathComponent == "a.hifa_calimage.pipeline_manifest.xml")
        #expect(try PipelineManifest.select(in: try SeedMous.temporaryDirectory()) == nil)
    }
}
