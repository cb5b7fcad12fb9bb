internal import Logging
internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Step 4: the restore SciPipeRequest in `working/PPR_<mous>.xml`, written and read back by ``PPRWriter``
/// (every invariant the pipeline's parser silently depends on is checked before CASA sees the file).
public struct PPRStep: PipelineStep {
    public let name = StepName.ppr
    public init() {}

    /// Where step 4 writes the PPR.
    public static func path(_ context: RestoreContext, _ metadata: RestoreMetadata) -> String {
        context.workArea.working(metadata.relativePath) + "/" + PPRWriter.fileName(for: metadata.plan)
    }

    public func run(in context: RestoreContext, reporter: any StepReporter) async throws {
        let metadata = try context.metadata()
        let path = Self.path(context, metadata)
        _ = try PPRWriter.write(
            plan: metadata.plan, relativePath: metadata.relativePath, to: URL(fileURLWithPath: path))
        context.logger.info("PPR written", metadata: ["ppr": "\(path)"])
        reporter.report(StepProgress(fraction: 1, message: "PPR written: \(PathString.lastComponent(path))"))
    }
}
