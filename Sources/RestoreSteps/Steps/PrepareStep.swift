internal import Logging
internal import FoundationEssentials
internal import Glibc

/// Step 1: checks that the MOUS can be restored (before any raw data is fetched), creates the pipeline's
/// directory tree and writes `metadata.json`.
///
/// The plan comes from the request's source (``RestoreSource``; absent: `sources.default`): the catalogue
/// (``Restorability``), a download package (``PackagePlanner``: its manifest is read and every file it names
/// found here, so a package that cannot be restored fails before its raw data are touched), or the ALMA
/// archive (looked up, then its auxiliary tar fetched and read like a package).
///
/// Idempotent: when `metadata.json` exists (a resumed restore), the plan it holds is kept — the catalogue
/// may have changed since, and a half-restored working area must not change its mind.
public struct PrepareStep: PipelineStep {
    public let name = StepName.prepare
    public init() {}

    /// The plan for `request` from its source.
    public static func plan(
        for request: RestoreRequest, context: RestoreContext, reporter: any StepReporter
    ) async throws(RestoreError) -> RestorePlan {
        let source: RestoreSource =
            request.source
            ?? {
                switch context.services.sources.defaultSource {
                case .catalogue: return .catalogue
                case .package: return .package("")
                case .almaArchive: return .almaArchive
                }
            }()
        switch source {
        case .catalogue:
            reporter.report(StepProgress(message: "looking up \(request.mous) in the catalogue"))
            let record: MousRecord?
            do { record = try await context.services.catalogue.record(for: request.mous) } catch let e as RestoreError {
                throw e
            } catch {
                throw RestoreError(
                    .catalogueUnavailable, "the metadata catalogue could not be read: \(error)",
                    hint: "Check catalogue.sqlite in the configuration (`dropbox-agent check`).", isTransient: true)
            }
            return try Restorability.plan(
                for: request, record: record, now: Date(), allowProprietary: context.services.allowProprietary)
        case .package(let location):
            return try await PackageSource.plan(
                request, location: location.isEmpty ? nil : location, context: context, reporter: reporter)
        case .almaArchive:
            return try await RemotePackage.planFromArchive(request, context: context, reporter: reporter)
        }
    }

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let area = context.workArea
        // The installation a request names must exist before anything is fetched (the ALMA archive source fetches
        // its auxiliary tar while planning).
        _ = try CASASelection.requestedInstallation(
            context.request.casa, installations: context.services.casaInstallations, step: .prepare)
        var metadata: RestoreMetadata
        if let existing = try? context.metadata(), existing.request.mous == context.request.mous {
            metadata = existing
        } else {
            let plan = try await Self.plan(for: context.request, context: context, reporter: reporter)
            let relativePath = RelativePath(plan: plan, time: Date())
            metadata = RestoreMetadata(
                request: context.request, plan: plan, relativePath: relativePath,
                agentVersion: context.services.agentVersion, createdAt: Date())
        }
        if metadata.casa == nil {
            // Packages and the ALMA archive: the plan carries the manifest's casaversion, so the policy applies now;
            // the catalogue source reads the manifest in step 3, which checks the choice again.
            let package = metadata.plan.package
            let (installation, choice) = try context.chooseCASA(
                manifestVersion: package?.casaVersion, manifestRead: package != nil, step: .prepare,
                modularRefusal: package?.modularRefusal)
            metadata.casa = choice
            context.logger.info(
                "CASA chosen",
                metadata: [
                    "installation": "\(installation.name)", "version": "\(installation.version)",
                    "manifest.casaversion": "\(choice.manifestVersion ?? (choice.manifestRead ? "-" : "not read yet"))",
                    "policy": "\(choice.policy.rawValue)",
                ])
            if let warning = choice.warning {
                context.logger.notice("CASA versions differ", metadata: ["warning": "\(warning)"])
            }
        }
        for dir in [
            area.logs, area.downloads, area.rawdata(metadata.relativePath), area.working(metadata.relativePath),
            area.products(metadata.relativePath),
        ] {
            try FileSystemSteps.createDirectory(dir)
        }
        try FileSystemSteps.writeAtomically(try metadata.encoded(), to: area.metadataFile)
        if let package = metadata.plan.package {
            for note in package.notes { context.logger.notice("package note", metadata: ["note": "\(note)"]) }
        } else {
            // The catalogue source learns the manifest only from its products: fetch them (kilobytes) and check
            // them — manifest ↔ EBs ↔ sessions ↔ files, what the modular restore can reproduce, the CASA version
            // policy — here, before the raw data (gigabytes) of step 2. A package's manifest was read above.
            // (The status contract fixes six steps with these names; step 3 then only stages the products.)
            try await CalibrationProducts.fetchAndCheck(context: context, metadata: metadata, reporter: reporter)
        }
        let plan = metadata.plan
        context.logger.info(
            "restore planned",
            metadata: [
                "mous": "\(plan.mous)", "project": "\(plan.record.project)",
                "execblocks": .stringConvertible(plan.execBlocks.count),
                "products": .stringConvertible(plan.products.count), "total.bytes": .stringConvertible(plan.totalBytes),
                "relative.path": "\(metadata.relativePath)",
            ])
        reporter.report(
            StepProgress(
                fraction: 1,
                message:
                    "\(plan.execBlocks.count) execution blocks, \(plan.products.count) products, \(plan.totalBytes) bytes to fetch"
            ))
    }
}
