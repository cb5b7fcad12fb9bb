internal import Logging
internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Step 3: calibration and script products flat in `products/`, `*auxproducts.tgz` expanded, exactly one
/// pipeline manifest copied into `rawdata/`, and the manifest cross-checked against the EBs, their sessions
/// and the files present — before any CASA runs (the `KeyError: 'session_2'` class of failure).
///
/// For catalogue restores the products were already fetched and checked at the start of step 2
/// (``CalibrationProducts/fetchAndCheck(context:metadata:reporter:)``), before the first raw byte: here they
/// are only staged (the fetch finds them in place; the local cross-check runs again, cheaply, so a resumed
/// restore whose products changed on disk is still caught). Package restores were checked in step 1 and are
/// staged from the package here.
public struct CalibrationStep: PipelineStep {
    public let name = StepName.calibration
    public init() {}

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let metadata = try context.metadata()
        let products = context.workArea.products(metadata.relativePath)
        let rawdata = context.workArea.rawdata(metadata.relativePath)
        if let package = metadata.plan.package {
            try await PackageStagingSteps.stageProducts(package, into: products, reporter: reporter)
        } else {
            try await CalibrationProducts.fetch(context: context, metadata: metadata, reporter: reporter)
        }
        let (chosen, _) = try CalibrationProducts.check(context: context, metadata: metadata, step: .calibration)
        // Exactly one manifest in rawdata/: remove any other the step left earlier.
        for old in ((try? FileManager.default.contentsOfDirectory(atPath: rawdata)) ?? [])
        where old.hasSuffix("pipeline_manifest.xml") && old != chosen {
            FileSystemSteps.remove(rawdata + "/" + old)
        }
        guard let data = FileManager.default.contents(atPath: products + "/" + chosen) else {
            throw RestoreError(.manifestMissing, "cannot read \(products)/\(chosen)")
        }
        try FileSystemSteps.writeAtomically(data, to: rawdata + "/" + chosen)
        reporter.report(
            StepProgress(
                fraction: 1, message: "\(metadata.plan.products.count) products staged; manifest \(chosen) checked"))
    }
}

/// The small calibration and script products of a catalogue restore: fetched and checked before the raw data.
enum CalibrationProducts {
    /// Fetches the products into `products/` (already present ones are kept) and checks them
    /// (``check(context:metadata:step:)``). Step 1 calls this for the catalogue source, before step 2's first raw
    /// byte — a metadata problem then costs kilobytes, not the gigabytes of the ASDMs.
    static func fetchAndCheck(
        context: RestoreContext, metadata: RestoreMetadata, reporter: any StepReporter
    ) async throws {
        try await fetch(context: context, metadata: metadata, reporter: reporter)
        let (chosen, _) = try check(context: context, metadata: metadata, step: .prepare)
        context.logger.info("calibration products checked before the raw data", metadata: ["manifest": "\(chosen)"])
    }

    /// Fetches the catalogue's products into `products/` and expands `*auxproducts.tgz` there.
    static func fetch(context: RestoreContext, metadata: RestoreMetadata, reporter: any StepReporter) async throws {
        let products = context.workArea.products(metadata.relativePath)
        try FileSystemSteps.createDirectory(products)
        let items = metadata.plan.products.map {
            ArchiveFetch.Item(file: $0.file, destination: products + "/" + $0.file.ngasFileId)
        }
        _ = try await ArchiveFetch.fetch(
            items, context: context, reporter: reporter, label: "calibration products (\(items.count) files)")
        let limits = context.services.archiveLimits
        for item in items where item.file.ngasFileId.hasSuffix("auxproducts.tgz") {
            try Task.checkCancellation()
            // Bounded by the catalogued (compressed) size, as the CASA side bounds caltables and flag versions.
            let bounded = limits.expectingCompressed(item.file.size)
            try await BlockingWork.run { (_) throws(RestoreError) in
                try Self.expandAuxiliary(products + "/" + item.file.ngasFileId, into: products, limits: bounded)
            }
        }
    }

    /// The manifest `hifa_restoredata` would choose among the products, parsed and cross-checked against the
    /// plan and the files (``ManifestCrossCheck``), with the CASA choice made again now that the manifest is known
    /// (``checkCASA(manifest:manifestName:metadata:context:step:)``: the version policy, and a refusal when it asks for
    /// what the modular restore cannot reproduce and no pipeline CASA is configured).
    @discardableResult
    static func check(
        context: RestoreContext, metadata: RestoreMetadata, step: StepName
    ) throws(RestoreError) -> (name: String, manifest: PipelineManifest) {
        let products = context.workArea.products(metadata.relativePath)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: products)) ?? []).filter {
            $0.hasSuffix("pipeline_manifest.xml")
        }
        guard let chosen = PipelineManifest.select(from: names) else {
            throw RestoreError(
                .manifestMissing,
                "no *pipeline_manifest.xml among the \(metadata.plan.products.count) calibration products of \(metadata.plan.mous)",
                hint: "The pipeline cannot restore without its manifest; check ASA_PRODUCT_FILES for this MOUS.")
        }
        if names.count > 1 {
            context.logger.notice(
                "several manifests; using the calibration one",
                metadata: ["manifests": "\(names.sorted())", "chosen": "\(chosen)"])
        }
        let manifest = try PipelineManifest.parse(file: products + "/" + chosen)
        try checkCASA(manifest: manifest, manifestName: chosen, metadata: metadata, context: context, step: step)
        try ManifestCrossCheck.check(
            manifest: manifest, manifestName: chosen, plan: metadata.plan, stagedFiles: URL(fileURLWithPath: products))
        return (chosen, manifest)
    }

    /// The catalogue source learns the manifest's `casaversion` only here: the CASA choice of step 1 is made again
    /// with it and checked against `casa.versionPolicy` (before the PPR and CASA), and `metadata.json` records it.
    static func checkCASA(
        manifest: PipelineManifest, manifestName: String, metadata: RestoreMetadata, context: RestoreContext,
        step: StepName
    ) throws(RestoreError) {
        if let recorded = metadata.casa, recorded.manifestRead, recorded.manifestVersion == manifest.casaVersion {
            return
        }
        let (installation, choice): (CASAInstallation, ChosenCASA)
        do {
            (installation, choice) = try context.chooseCASA(
                manifestVersion: manifest.casaVersion, manifestRead: true, step: step,
                modularRefusal: CASASelection.modularRefusal(for: manifest, manifestName: manifestName))
        } catch {
            var e = error
            e.message += " (manifest \(manifestName))"
            throw e
        }
        var updated = metadata
        updated.casa = choice
        let encoded: Data
        do { encoded = try updated.encoded() } catch {
            throw RestoreError(.internalError, "cannot encode metadata.json: \(error)")
        }
        try FileSystemSteps.writeAtomically(encoded, to: context.workArea.metadataFile)
        context.logger.info(
            "CASA chosen with the manifest",
            metadata: [
                "installation": "\(installation.name)", "version": "\(installation.version)",
                "manifest.casaversion": "\(choice.manifestVersion ?? "-")", "policy": "\(choice.policy.rawValue)",
            ])
        if let warning = choice.warning {
            context.logger.notice("CASA versions differ", metadata: ["warning": "\(warning)"])
        }
    }

    /// Unpacks the auxiliary products (flux.csv, antennapos.csv, cont.dat, flag templates) next to the others,
    /// never overwriting a product of the same name.
    /// Blocking: runs inside ``BlockingWork/run(_:)``.
    private static func expandAuxiliary(
        _ tgz: String, into products: String, limits: ArchiveLimits
    ) throws(RestoreError) {
        let staging = products + "/.aux-" + PathString.lastComponent(tgz)
        FileSystemSteps.remove(staging)
        try FileSystemSteps.createDirectory(staging)
        defer { FileSystemSteps.remove(staging) }
        do { _ = try SafeArchive.extract(tgz, into: staging, limits: limits) } catch {
            throw RestoreError(
                RestoreError.Code(rawValue: error.code.rawValue),
                "cannot unpack \(PathString.lastComponent(tgz)): \(error.message)", hint: error.hint)
        }
        for item in (try? FileManager.default.subpathsOfDirectory(atPath: staging)) ?? [] {
            let source = staging + "/" + item
            guard !FileSystemSteps.isDirectory(source) else { continue }
            let target = products + "/" + PathString.lastComponent(item)
            if !FileSystemSteps.exists(target) { try FileSystemSteps.move(source, to: target) }
        }
    }
}
