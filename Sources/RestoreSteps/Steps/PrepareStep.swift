internal import Logging
internal import Foundation

/// Step 1: checks that the MOUS can be restored (catalogue rules, before anything is fetched), creates the
/// pipeline's directory tree and writes `metadata.json`.
///
/// Idempotent: when `metadata.json` exists (a resumed restore), the plan it holds is kept — the catalogue
/// may have changed since, and a half-restored working area must not change its mind.
public struct PrepareStep: PipelineStep {
    public let name = StepName.prepare
    public init() {}

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let area = context.workArea
        let metadata: RestoreMetadata
        if let existing = try? context.metadata(), existing.request.mous == context.request.mous {
            metadata = existing
        } else {
            reporter.report(StepProgress(message: "looking up \(context.request.mous) in the catalogue"))
            let record: MousRecord?
            do { record = try await context.services.catalogue.record(for: context.request.mous) } catch let e as RestoreError {
                throw e
            } catch {
                throw RestoreError("catalogueUnavailable", "the metadata catalogue could not be read: \(error)", hint: "Check catalogue.sqlite in the configuration (`dropbox-agent check`).", isTransient: true)
            }
            let plan = try Restorability.plan(for: context.request, record: record, now: Date(), allowProprietary: context.services.allowProprietary)
            let relativePath = RelativePath(plan: plan, time: Date())
            metadata = RestoreMetadata(request: context.request, plan: plan, relativePath: relativePath, agentVersion: context.services.agentVersion, createdAt: Date())
        }
        for dir in [area.logs, area.downloads, area.rawdata(metadata.relativePath), area.working(metadata.relativePath), area.products(metadata.relativePath)] {
            try FileSystemSteps.createDirectory(dir)
        }
        try FileSystemSteps.writeAtomically(try metadata.encoded(), to: area.metadataFile)
        let plan = metadata.plan
        context.logger.info("restore planned", metadata: [
            "mous": "\(plan.mous)", "project": "\(plan.record.project)", "execblocks": "\(plan.execBlocks.count)",
            "products": "\(plan.products.count)", "bytes": "\(plan.totalBytes)", "relative.path": "\(metadata.relativePath)",
        ])
        reporter.report(StepProgress(fraction: 1, message: "\(plan.execBlocks.count) execution blocks, \(plan.products.count) products, \(plan.totalBytes) bytes to fetch"))
    }
}
