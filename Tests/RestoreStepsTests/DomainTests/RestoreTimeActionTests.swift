import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

/// Manifests asking hifa_restoredata for what the modular restore cannot reproduce (pipeline
/// `h/tasks/restoredata/restoredata.py` `_do_renormalize`, `h/tasks/common/manifest.py` `add_renorm`).
@Suite(.tags(.unit)) struct RestoreTimeActionTests {
    static func manifest(asdmExtra: String = "", ousExtra: String = "") -> String {
        """
        <?xml version="1.0" ?>
        <piperesults name="uid___A001_X1_X2">
          <ous name="uid___A001_X1_X2">
            <casaversion name="6.5.4.9"/>
            \(ousExtra)
            <session name="session_1">
              <caltables name="uid___A001_X1_X2.session_1.caltables.tgz"/>
              <asdm name="uid___A002_X1_X1.ms">
                <finalflags name="uid___A002_X1_X1.ms.flagversions.tgz"/>
                <applycmds name="uid___A002_X1_X1.ms.calapply.txt"/>
                \(asdmExtra)
              </asdm>
            </session>
          </ous>
        </piperesults>
        """
    }

    let installations = [
        CASAInstallation(name: "modular", kind: .modular, home: "/venv", version: "6.7.0.31")
    ]
    let withPipeline = [
        CASAInstallation(name: "modular", kind: .modular, home: "/venv", version: "6.7.0.31"),
        CASAInstallation(name: "pipeline-6.6", kind: .pipeline, home: "/opt/casa-6.6.1", version: "6.6.1.17"),
    ]

    @Test func pl2024ManifestHasNoRestoreTimeAction() throws {
        // PL2024+: renormalisation is an ordinary caltable in the apply list, nothing in the manifest.
        let m = try PipelineManifest.parse(
            Self.manifest(
                asdmExtra: "<finalms name=\"x.ms\"/><image name=\"i.fits\" imtype=\"cube\"/>",
                ousExtra: "<aux_products_file name=\"a.auxproducts.tgz\"/>"))
        #expect(m.restoreTimeActions.isEmpty)
        #expect(CASASelection.modularRefusal(for: m, manifestName: "m.xml") == nil)
        _ = try CASASelection.choose(
            requested: nil, manifestCasaVersion: m.casaVersion, installations: installations, defaultName: nil,
            modularRefusal: CASASelection.modularRefusal(for: m, manifestName: "m.xml"))
    }

    @Test func hifaRenormIsRefusedWithoutAPipelineCASA() throws {
        let m = try PipelineManifest.parse(
            Self.manifest(
                asdmExtra:
                    "<hifa_renorm apply=\"True\" threshold=\"None\" spw=\"17,19\" excludechan=\"{}\" correctATM=\"False\"/>"
            ))
        #expect(m.sessions[0].asdms[0].renormAtRestore)
        #expect(m.restoreTimeActions.map(\.code) == [.manifestRenormAtRestore])
        do {
            _ = try CASASelection.choose(
                requested: nil, manifestCasaVersion: m.casaVersion, installations: installations,
                defaultName: "modular",
                modularRefusal: CASASelection.modularRefusal(for: m, manifestName: "m.pipeline_manifest.xml"))
            Issue.record("accepted a hifa_renorm manifest")
        } catch {
            #expect(error.code == .manifestRenormAtRestore)
            #expect(error.message.contains("<hifa_renorm> for uid___A002_X1_X1.ms"), "\(error.message)")
            #expect(error.message.contains("m.pipeline_manifest.xml"))
            #expect(error.message.contains("no pipeline CASA installation is configured"))
            #expect(error.hint?.contains("pipeline") == true)
        }
    }

    @Test func aPipelineCASARunsInstead() throws {
        let m = try PipelineManifest.parse(Self.manifest(asdmExtra: "<hifa_renorm apply=\"True\"/>"))
        _ = try CASASelection.choose(
            requested: nil, manifestCasaVersion: m.casaVersion, installations: withPipeline, defaultName: "modular",
            modularRefusal: CASASelection.modularRefusal(for: m, manifestName: "m.xml"))
        let refusal = CASASelection.modularRefusal(for: m, manifestName: "m.xml")
        let chosen = try CASASelection.select(
            requested: nil, manifestCasaVersion: m.casaVersion, installations: withPipeline, defaultName: "modular",
            modularRefusal: refusal)
        #expect(chosen.kind == .pipeline)
        // A request naming the modular installation is refused, with the reason.
        do {
            _ = try CASASelection.select(
                requested: .name("modular"), manifestCasaVersion: nil, installations: withPipeline, defaultName: nil,
                modularRefusal: refusal)
            Issue.record("ran the modular restore")
        } catch {
            #expect(error.code == .manifestRenormAtRestore)
            #expect(
                error.message.contains("the request asks for the modular installation \"modular\""), "\(error.message)")
        }
        // Without a refusal the default stays modular.
        #expect(
            try CASASelection.select(
                requested: nil, manifestCasaVersion: nil, installations: withPipeline, defaultName: "modular"
            ).kind == .modular)
    }

    @Test func selfcalAndUnknownAsdmChildrenAreRefused() throws {
        let m = try PipelineManifest.parse(
            Self.manifest(asdmExtra: "<hifa_newthing x=\"1\"/>", ousExtra: "<selfcal_resources name=\"s.tgz\"/>"))
        #expect(m.selfcalElements == ["selfcal_resources"])
        #expect(m.sessions[0].asdms[0].unknownElements == ["hifa_newthing"])
        #expect(m.restoreTimeActions.map(\.code) == [.manifestSelfcal, .manifestUnknownRestoreAction])
        let refusal = try #require(CASASelection.modularRefusal(for: m, manifestName: "m.xml"))
        #expect(refusal.code == .manifestSelfcal)
        #expect(refusal.message.contains("selfcal resources (<selfcal_resources>)"))
        #expect(refusal.message.contains("<hifa_newthing> in <asdm name=\"uid___A002_X1_X1.ms\">"))
    }
}

@Suite(.tags(.unit)) struct DiskSpaceCheckTests {
    @Test func failsWithTheNumbers() throws {
        let dir = NSTemporaryDirectory()
        let available = try #require(DiskSpaceCheck.availableBytes(dir))
        let raw = available / 2 + 1
        do {
            try DiskSpaceCheck.check(rawBytes: raw, factor: 3, path: dir)
            Issue.record("passed")
        } catch {
            #expect(error.code == .insufficientDiskSpace)
            #expect(error.message.contains("\(raw * 3) bytes"), "\(error.message)")
            #expect(error.message.contains(dir))
            #expect(error.message.contains("available"))
        }
        try DiskSpaceCheck.check(rawBytes: 1000, factor: DiskSpaceCheck.defaultFactor, path: dir)
        try DiskSpaceCheck.check(rawBytes: raw, factor: 0, path: dir)  // disabled
    }
}
