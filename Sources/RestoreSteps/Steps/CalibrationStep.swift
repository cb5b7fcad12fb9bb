internal import Logging
internal import Delivery
internal import Foundation

/// Step 3: calibration and script products flat in `products/`, `*auxproducts.tgz` expanded, exactly one
/// pipeline manifest copied into `rawdata/`, and the manifest cross-checked against the EBs, their sessions
/// and the files present — before any CASA runs (the `KeyError: 'session_2'` class of failure).
public struct CalibrationStep: PipelineStep {
    public let name = StepName.calibration
    public init() {}

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let metadata = try context.metadata()
        let products = context.workArea.products(metadata.relativePath)
        let rawdata = context.workArea.rawdata(metadata.relativePath)
        let items = metadata.plan.products.map { ArchiveFetch.Item(file: $0.file, destination: products + "/" + $0.file.ngasFileId) }
        if let package = metadata.plan.package {
            try await PackageStagingSteps.stageProducts(package, into: products, reporter: reporter)
        } else {
            _ = try await ArchiveFetch.fetch(items, context: context, reporter: reporter, label: "calibration products (\(items.count) files)")
        }

        let limits = context.services.archiveLimits
        for aux in items.map(\.file.ngasFileId) where aux.hasSuffix("auxproducts.tgz") {
            try Task.checkCancellation()
            try await BlockingWork.run { (_) throws(RestoreError) in
                try Self.expandAuxiliary(products + "/" + aux, into: products, limits: limits)
            }
        }

        let names = ((try? FileManager.default.contentsOfDirectory(atPath: products)) ?? []).filter { $0.hasSuffix("pipeline_manifest.xml") }
        guard let chosen = PipelineManifest.select(from: names) else {
            throw RestoreError(
                "manifestMissing", "no *pipeline_manifest.xml among the \(items.count) calibration products of \(metadata.plan.mous)",
                hint: "The pipeline cannot restore without its manifest; check ASA_PRODUCT_FILES for this MOUS.")
        }
        if names.count > 1 {
            context.logger.notice("several manifests; using the calibration one", metadata: ["manifests": "\(names.sorted())", "chosen": "\(chosen)"])
        }
        // Exactly one manifest in rawdata/: remove any other the step left earlier.
        for old in ((try? FileManager.default.contentsOfDirectory(atPath: rawdata)) ?? []) where old.hasSuffix("pipeline_manifest.xml") && old != chosen {
            FileSystemSteps.remove(rawdata + "/" + old)
        }
        guard let data = FileManager.default.contents(atPath: products + "/" + chosen) else {
            throw RestoreError("manifestMissing", "cannot read \(products)/\(chosen)")
        }
        try FileSystemSteps.writeAtomically(data, to: rawdata + "/" + chosen)
        let manifest = try PipelineManifest.parse(file: rawdata + "/" + chosen)
        try ManifestCrossCheck.check(manifest: manifest, manifestName: chosen, plan: metadata.plan, stagedFiles: URL(fileURLWithPath: products))
        reporter.report(StepProgress(fraction: 1, message: "\(items.count) products staged; manifest \(chosen) checked"))
    }

    /// Unpacks the auxiliary products (flux.csv, antennapos.csv, cont.dat, flag templates) next to the others,
    /// never overwriting a product of the same name.
    /// Blocking: runs inside ``BlockingWork/run(_:)``.
    private static func expandAuxiliary(_ tgz: String, into products: String, limits: ArchiveLimits) throws(RestoreError) {
        let staging = products + "/.aux-" + (tgz as NSString).lastPathComponent
        FileSystemSteps.remove(staging)
        try FileSystemSteps.createDirectory(staging)
        defer { FileSystemSteps.remove(staging) }
        do { _ = try SafeArchive.extract(tgz, into: staging, limits: limits) } catch {
            throw RestoreError(RestoreError.Code(rawValue: error.code.rawValue), "cannot unpack \((tgz as NSString).lastPathComponent): \(error.message)", hint: error.hint)
        }
        let e = FileManager.default.enumerator(atPath: staging)
        while let item = e?.nextObject() as? String {
            let source = staging + "/" + item
            guard !FileSystemSteps.isDirectory(source) else { continue }
            let target = products + "/" + (item as NSString).lastPathComponent
            if !FileSystemSteps.exists(target) { try FileSystemSteps.move(source, to: target) }
        }
    }
}
