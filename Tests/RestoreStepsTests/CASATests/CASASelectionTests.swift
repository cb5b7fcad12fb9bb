import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

@Suite("CASA selection", .serialized, .tags(.integration), .selected(.integration))
struct CASASelectionTests {
    let dir: String
    let installations: [CASAInstallation]

    init() throws {
        dir = try CASAFixtures.temporaryDirectory("selection")
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/opt/casa-6.5.4-9", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: dir + "/opt/casa-5.1.1-5", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: dir + "/casa-current", withDestinationPath: dir + "/opt/casa-6.5.4-9")
        installations = [
            CASAInstallation(
                name: "pipeline-6.5.4", kind: .pipeline, home: dir + "/opt/casa-6.5.4-9", version: "6.5.4-9"),
            CASAInstallation(
                name: "pipeline-5.1.1", kind: .pipeline, home: dir + "/opt/casa-5.1.1-5", version: "5.1.1-5"),
            CASAInstallation(name: "modular", kind: .modular, home: dir + "/venv", version: "6.7.0.31"),
        ]
    }

    @Test func requestByNamePicksThatInstallation() throws {
        let chosen = try CASASelection.select(
            requested: .name("pipeline-5.1.1"), manifestCasaVersion: "6.5.4.9", installations: installations,
            defaultName: "modular")
        #expect(chosen.name == "pipeline-5.1.1")
    }

    @Test func requestByCasaHomeMatchesAfterNormalising() throws {
        for home in [
            dir + "/opt/casa-6.5.4-9", dir + "/opt/casa-6.5.4-9/", dir + "/opt/./casa-5.1.1-5/../casa-6.5.4-9",
            dir + "/casa-current",
        ] {
            let chosen = try CASASelection.select(
                requested: .home(home), manifestCasaVersion: nil, installations: installations, defaultName: "modular")
            #expect(chosen.name == "pipeline-6.5.4", "casaHome \(home)")
        }
    }

    @Test(arguments: [
        RestoreRequest.CASAChoice.name("/usr/bin/evil"), .name("pipeline-6.5"), .home("/usr/bin"),
        .home("/opt/casa-6.5.4-9"),
    ])
    func unknownRequestIsRejectedWithTheConfiguredNames(_ choice: RestoreRequest.CASAChoice) {
        #expect {
            _ = try CASASelection.select(
                requested: choice, manifestCasaVersion: "6.5.4.9", installations: installations, defaultName: "modular")
        } throws: { error in
            guard let error = error as? RestoreError else { return false }
            return error.code == .casaNotConfigured && error.step == .casa
                && installations.allSatisfy { error.hint?.contains($0.name) == true }
        }
    }

    @Test func manifestCasaVersionPicksTheMatchingInstallation() throws {
        let chosen = try CASASelection.select(
            requested: nil, manifestCasaVersion: "5.1.1.5", installations: installations, defaultName: "modular")
        #expect(chosen.name == "pipeline-5.1.1")
    }

    @Test func defaultWhenManifestVersionIsNotConfigured() throws {
        let chosen = try CASASelection.select(
            requested: nil, manifestCasaVersion: "6.2.1.7", installations: installations, defaultName: "modular")
        #expect(chosen.name == "modular")
        let noManifest = try CASASelection.select(
            requested: nil, manifestCasaVersion: nil, installations: installations, defaultName: "pipeline-5.1.1")
        #expect(noManifest.name == "pipeline-5.1.1")
    }

    @Test func nothingToChooseIsRejected() {
        #expect(throws: RestoreError.self) {
            _ = try CASASelection.select(
                requested: nil, manifestCasaVersion: "6.2.1.7", installations: installations, defaultName: nil)
        }
        #expect(throws: RestoreError.self) {
            _ = try CASASelection.select(requested: nil, manifestCasaVersion: nil, installations: [], defaultName: nil)
        }
        let only = try? CASASelection.select(
            requested: nil, manifestCasaVersion: nil, installations: [installations[2]], defaultName: nil)
        #expect(only?.name == "modular")
    }

    @Test func decodingAppliesDefaults() throws {
        let json = #"{"name": "p", "kind": "pipeline", "home": "/opt/casa", "version": "5.4.0-68"}"#
        let decoded = try JSONDecoder().decode(CASAInstallation.self, from: Data(json.utf8))
        #expect(decoded.runpipeline == "/opt/casa/pipeline/pipeline/runpipeline.py")
        #expect(decoded.scriptDir == "/opt/casa/pipeline/pipeline/recipes")
        #expect(decoded.xvfbRun == "xvfb-run")
        #expect(decoded.useXvfb)
        #expect(decoded.isCASA5)
        let modular = try JSONDecoder().decode(
            CASAInstallation.self, from: Data(#"{"name": "m", "kind": "modular", "home": "/v", "version": "6.7"}"#.utf8)
        )
        #expect(!modular.useXvfb)
    }
}
