import Delivery
import Foundation
import Logging
import Synchronization
import Testing
import DropboxTestKit

@testable import RestoreSteps

@Suite("CASA versions and casa.versionPolicy", .tags(.unit))
struct CASAVersionTests {
    @Test func parsesTheFormsALMAUses() throws {
        #expect(try #require(CASAVersion("6.5.4.9")).components == [6, 5, 4, 9])
        #expect(try #require(CASAVersion("5.1.1-5")).components == [5, 1, 1, 5])
        #expect(CASAVersion("6.5.4-9") == CASAVersion("6.5.4.9"))
        #expect(CASAVersion("6.5") == CASAVersion("6.5.0.0"))
        #expect(CASAVersion(" 6.7.0.31 ")?.description == "6.7.0.31")
        for bad in ["", "casa", "6.7.0.31a", "6.x", "..."] { #expect(CASAVersion(bad) == nil, "\(bad)") }
    }

    @Test func ordersByNumericComponents() throws {
        let ordered = ["5.1.1-5", "6.2.1.7", "6.5", "6.5.4.9", "6.5.6.22", "6.6.5.31", "6.7.0.31", "6.10.0.1"]
            .compactMap(CASAVersion.init)
        #expect(ordered.count == 8)
        #expect(ordered == ordered.sorted())
        #expect(try #require(CASAVersion("6.10.0.1")) > #require(CASAVersion("6.9.9.9")))  // not string order
        #expect(try #require(CASAVersion("6.5.4.10")) > #require(CASAVersion("6.5.4.9")))
    }

    @Test(arguments: [
        // installed, manifest, exact, sameMinor, newerAllowed, any
        ("6.5.4.9", "6.5.4-9", true, true, true, true),
        ("6.7.0.31", "6.5.4.9", false, false, true, true),
        ("6.5.6.22", "6.5.4.9", false, true, true, true),
        ("6.5.3.28", "6.5.4.9", false, true, false, true),
        ("5.1.1-5", "6.5.4.9", false, false, false, true),
        ("6.6.5.31", "6.7.0.31", false, false, false, true),
    ])
    func policies(
        _ installed: String, _ manifest: String, _ exact: Bool, _ sameMinor: Bool, _ newer: Bool, _ any: Bool
    ) throws {
        let i = try #require(CASAVersion(installed))
        let m = try #require(CASAVersion(manifest))
        #expect(CASAVersionPolicy.exact.allows(installed: i, manifest: m) == exact)
        #expect(CASAVersionPolicy.sameMinor.allows(installed: i, manifest: m) == sameMinor)
        #expect(CASAVersionPolicy.newerAllowed.allows(installed: i, manifest: m) == newer)
        #expect(CASAVersionPolicy.any.allows(installed: i, manifest: m) == any)
    }

    @Test func defaultPolicyIsNewerAllowed() { #expect(CASAVersionPolicy.default == .newerAllowed) }
}

@Suite("CASA selection under casa.versionPolicy", .tags(.unit))
struct CASAPolicySelectionTests {
    let modular = CASAInstallation(name: "modular", kind: .modular, home: "/v/casa-venv", version: "6.7.0.31")
    let older = CASAInstallation(
        name: "modular-6.6.5.31", kind: .modular, home: "/v/casa-venvs/6.6.5.31", version: "6.6.5.31")
    let pipeline = CASAInstallation(
        name: "pipeline-6.5.4", kind: .pipeline, home: "/opt/casa-6.5.4-9", version: "6.5.4-9")

    @Test func newerAllowedRunsTheLaterCASAWithAWarning() throws {
        let (chosen, choice) = try CASASelection.choose(
            requested: nil, manifestCasaVersion: "6.5.4.9", installations: [modular], defaultName: "modular",
            policy: .newerAllowed)
        #expect(chosen.name == "modular")
        #expect(choice.version == "6.7.0.31" && choice.manifestVersion == "6.5.4.9" && choice.installation == "modular")
        let warning = try #require(choice.warning)
        #expect(warning.contains("6.5.4.9") && warning.contains("6.7.0.31") && warning.contains("newerAllowed"))
    }

    @Test func exactRefusesWithAPreciseError() {
        let error = #expect(throws: RestoreError.self) {
            _ = try CASASelection.choose(
                requested: nil, manifestCasaVersion: "6.5.4.9", installations: [modular], defaultName: "modular",
                policy: .exact,
                step: .calibration)
        }
        #expect(error?.code == .casaVersionRefused)
        #expect(error?.step == .calibration)
        #expect(error?.message.contains("CASA 6.5.4.9") == true)
        #expect(error?.message.contains("exact") == true)
        #expect(error?.message.contains("modular is CASA 6.7.0.31") == true)
        #expect(error?.hint?.contains("casa install --version 6.5.4.9") == true)
    }

    @Test func theMatchingVersionWinsOverTheDefaultAndSaysNothing() throws {
        let (chosen, choice) = try CASASelection.choose(
            requested: nil, manifestCasaVersion: "6.5.4.9", installations: [modular, pipeline], defaultName: "modular",
            policy: .exact)
        #expect(chosen.name == "pipeline-6.5.4")
        #expect(choice.warning == nil && !choice.versionsDiffer)
    }

    @Test func withoutTheDefaultAllowedTheClosestAllowedVersionIsTaken() throws {
        // sameMinor: 6.6.x wanted; the default (6.7) is not allowed, the 6.6.5.31 venv is.
        let (chosen, _) = try CASASelection.choose(
            requested: nil, manifestCasaVersion: "6.6.1.2", installations: [modular, older, pipeline],
            defaultName: "modular",
            policy: .sameMinor)
        #expect(chosen.name == "modular-6.6.5.31")
        // newerAllowed: the oldest not older than the manifest.
        let (newer, _) = try CASASelection.choose(
            requested: nil, manifestCasaVersion: "6.6.0.20", installations: [pipeline, modular, older],
            defaultName: "pipeline-6.5.4")
        #expect(newer.name == "modular-6.6.5.31")
    }

    @Test func aRequestedInstallationMustSatisfyThePolicyOnceTheManifestIsKnown() throws {
        let error = #expect(throws: RestoreError.self) {
            _ = try CASASelection.choose(
                requested: .name("pipeline-6.5.4"), manifestCasaVersion: "6.7.0.31",
                installations: [modular, pipeline],
                defaultName: "modular", policy: .newerAllowed, step: .prepare)
        }
        #expect(error?.code == .casaVersionRefused && error?.step == .prepare)
        #expect(
            error?.message.contains("pipeline-6.5.4") == true && error?.message.contains("6.7.0.31 or later") == true)
        // Before the manifest is read, only existence is checked.
        let (early, choice) = try CASASelection.choose(
            requested: .name("pipeline-6.5.4"), manifestCasaVersion: nil, manifestRead: false,
            installations: [modular, pipeline],
            defaultName: "modular", policy: .exact)
        #expect(
            early.name == "pipeline-6.5.4" && choice.manifestVersion == nil && !choice.manifestRead
                && choice.warning == nil)
    }

    @Test func installOnDemandCreatesTheManifestsVersion() throws {
        let onDemand = CASASelection.OnDemand(directory: "/data/casa-venvs", programDir: "/repo/casa")
        let (chosen, choice) = try CASASelection.choose(
            requested: nil, manifestCasaVersion: "6.6.5.31", installations: [modular], defaultName: "modular",
            policy: .exact,
            onDemand: onDemand)
        #expect(
            chosen.name == "modular-6.6.5.31" && chosen.home == "/data/casa-venvs/6.6.5.31" && chosen.kind == .modular)
        #expect(choice.createOnFirstUse == "/data/casa-venvs/6.6.5.31" && choice.warning == nil)
    }

    @Test func choiceIsRecordedInMetadata() throws {
        var metadata = RestoreMetadata(
            request: RestoreRequest(mous: SeedMous.mous), plan: try SeedMous.plan(),
            relativePath: try #require(RelativePath("x")),
            agentVersion: "t", createdAt: SeedMous.now)
        metadata.casa = ChosenCASA(
            version: "6.7.0.31", manifestVersion: "6.5.4.9", installation: "modular", policy: .newerAllowed,
            manifestRead: true)
        let json = try #require(try JSONSerialization.jsonObject(with: try metadata.encoded()) as? [String: Any])
        let casa = try #require(json["casa"] as? [String: Any])
        #expect(
            casa["version"] as? String == "6.7.0.31" && casa["manifestVersion"] as? String == "6.5.4.9"
                && casa["installation"] as? String == "modular")
        #expect(try RestoreMetadata.decode(try metadata.encoded()).casa == metadata.casa)
    }
}

// MARK: - The steps

/// A catalogue that knows the seed MOUS.
struct SeedCatalogue: MetadataSource {
    func mous(_ uid: String) throws -> MousRecord? { uid == SeedMous.mous ? try SeedMous.record() : nil }
}

/// An archive store that records every request and serves nothing.
final class RecordingStore: ArchiveStore, Sendable {
    let requested = Mutex<[String]>([])
    var description: String { "recording test store" }
    func retrieve(
        _ file: ExpectedFile, to destination: String, progress: @escaping ProgressHandler
    ) async throws -> RetrievedFile {
        requested.withLock { $0.append(file.fileId) }
        throw DeliveryError(.fileNotFound, "test store serves nothing")
    }
}

final class Silent: PipelineObserver, StepReporter, Sendable {
    func stepWillStart(_ step: StepName) async throws {}
    func stepDidComplete(_ step: StepName) async throws {}
    func report(_ progress: StepProgress) {}
}

@Suite("CASA choice in the restore steps", .serialized, .tags(.integration), .selected(.integration))
struct CASAChoiceStepTests {
    let root: String
    let store = RecordingStore()

    init() throws {
        root = try SeedMous.temporaryDirectory().path
    }

    func context(request: RestoreRequest, policy: CASAVersionPolicy) -> RestoreContext {
        let services = RestoreServices(
            catalogue: SeedCatalogue(), store: store, cache: nil,
            casaInstallations: [
                CASAInstallation(name: "modular", kind: .modular, home: root + "/venv", version: "6.7.0.31")
            ],
            defaultCASA: "modular", casaVersionPolicy: policy, downloadDirectory: root + "/downloads",
            agentVersion: "test")
        return RestoreContext(
            request: request, requestName: "r", restoreId: "job", root: root + "/restore", services: services,
            logger: Logger(label: "test"))
    }

    @Test func anUnknownInstallationIsRefusedInStepOneBeforeAnyFetch() async throws {
        let request = RestoreRequest(mous: SeedMous.mous, casa: .name("casa-6.5.4"))
        let outcome = await RestorePipeline(steps: RestoreContext.steps).run(
            context(request: request, policy: .newerAllowed), completed: [], observer: Silent(), reporter: Silent())
        guard case .failed(let error) = outcome else {
            Issue.record("expected a failure, got \(outcome)")
            return
        }
        #expect(error.code == .casaNotConfigured && error.step == .prepare)
        #expect(error.message.contains("casa-6.5.4"))
        #expect(store.requested.withLock { $0 }.isEmpty, "files were requested: \(store.requested.withLock { $0 })")
        #expect(!FileManager.default.fileExists(atPath: root + "/restore/metadata.json"))
    }

    /// Step 1 of a catalogue restore records the choice made without the manifest, then fetches the small
    /// products to read it (this store serves nothing, so step 1 stops there — having asked for no raw file).
    func prepareUntilTheProductsAreFetched(_ ctx: RestoreContext) async throws {
        let error = await #expect(throws: RestoreError.self) {
            try await PrepareStep().run(in: ctx, reporter: Silent())
        }
        #expect(error?.code.rawValue == "fileNotFound")
        let requested = store.requested.withLock { $0 }
        #expect(!requested.isEmpty && !requested.contains { $0.contains(".asdm") }, "\(requested)")
    }

    @Test func stepOneRecordsTheChoiceWithoutTheManifestForTheCatalogue() async throws {
        let ctx = context(request: RestoreRequest(mous: SeedMous.mous), policy: .exact)
        try await prepareUntilTheProductsAreFetched(ctx)
        let casa = try #require(try ctx.metadata().casa)
        #expect(
            casa.installation == "modular" && casa.version == "6.7.0.31" && casa.manifestVersion == nil
                && !casa.manifestRead)
    }

    @Test(arguments: [CASAVersionPolicy.newerAllowed, .exact])
    func theManifestIsCheckedWhereItIsRead(_ policy: CASAVersionPolicy) async throws {
        let ctx = context(request: RestoreRequest(mous: SeedMous.mous), policy: policy)
        try await prepareUntilTheProductsAreFetched(ctx)
        let manifest = PipelineManifest(
            ousName: SeedMous.oussid, casaVersion: "6.5.4.9", pipelineVersion: "2023.1.0.124",
            procedureName: "hifa_calimage", sessions: [], auxProductsFile: nil)
        switch policy {
        case .exact:
            let error = #expect(throws: RestoreError.self) {
                try CalibrationProducts.checkCASA(
                    manifest: manifest, manifestName: "m.pipeline_manifest.xml", metadata: try ctx.metadata(),
                    context: ctx, step: .calibration)
            }
            #expect(error?.code == .casaVersionRefused && error?.step == .calibration)
            #expect(
                error?.message.contains("CASA 6.5.4.9") == true
                    && error?.message.contains("m.pipeline_manifest.xml") == true)
        default:
            try CalibrationProducts.checkCASA(
                manifest: manifest, manifestName: "m.pipeline_manifest.xml", metadata: try ctx.metadata(), context: ctx,
                step: .calibration)
            let casa = try #require(try ctx.metadata().casa)
            #expect(casa.manifestVersion == "6.5.4.9" && casa.manifestRead && casa.version == "6.7.0.31")
            #expect(casa.warning?.contains("6.5.4.9") == true)
        }
    }

    @Test func packageSourcesApplyThePolicyInStepOne() async throws {
        let ctx = context(request: RestoreRequest(mous: SeedMous.mous), policy: .exact)
        // A plan from a package carries the manifest's casaversion (PackagePlanner); step 1 keeps an existing plan.
        var plan = try SeedMous.plan()
        plan.package = PackageStaging(
            location: "/p", memberDirectory: "m", structureSource: "defaults", casaVersion: "6.5.4.9",
            pipelineVersion: nil, products: [], asdms: [:], notes: [])
        let metadata = RestoreMetadata(
            request: ctx.request, plan: plan, relativePath: try #require(RelativePath("x")), agentVersion: "t",
            createdAt: SeedMous.now)
        try FileManager.default.createDirectory(atPath: root + "/restore", withIntermediateDirectories: true)
        try metadata.encoded().write(to: URL(fileURLWithPath: root + "/restore/metadata.json"))
        let error = await #expect(throws: RestoreError.self) {
            try await PrepareStep().run(in: ctx, reporter: Silent())
        }
        #expect(error?.code == .casaVersionRefused && error?.step == .prepare)
        #expect(store.requested.withLock { $0 }.isEmpty)
    }
}
