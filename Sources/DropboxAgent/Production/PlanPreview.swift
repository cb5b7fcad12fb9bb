import FoundationEssentials
import Glibc
import Logging
import RestoreSteps

/// `validate --plan`: what a restore of the request would fetch, and the PPR it would write.
enum PlanPreview {
    /// Plans the request exactly as step 1 would (same source rules), in a scratch working area that is removed
    /// afterwards: a package's auxiliary tar is read there; nothing is written elsewhere.
    static func render(for request: RestoreRequest, configuration: AgentConfiguration) async throws -> String {
        let services = try ProductionExecutor.services(configuration)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent(
            "dropbox-agent-plan-\(UUID().uuidString)"
        ).path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let context = RestoreContext(
            request: request, requestName: "validate", restoreId: "validate", root: scratch, services: services,
            logger: Logger(label: "validate", factory: { _ in SwiftLogNoOpLogHandler() }))
        let plan = try await PrepareStep.plan(for: request, context: context, reporter: SilentReporter())
        let relativePath = RelativePath(plan: plan, time: Date())
        var out = ["plan:"] + plan.summaryLines.map { "  " + $0 }
        out.append(plan.package == nil ? "files to fetch:" : "files to read from the package:")
        for eb in plan.execBlocks {
            let source = plan.package?.asdms[eb.asdmDiskName.rawValue]
            out.append(
                "  \(source?.url ?? source?.path ?? eb.asdm.ngasFileId)  \(eb.asdm.size) bytes  (ASDM of \(eb.uid), \(eb.sessionName))"
            )
        }
        let sources = Dictionary(
            (plan.package?.products ?? []).map { ($0.name, $0.source) }, uniquingKeysWith: { a, _ in a })
        for p in plan.products {
            out.append(
                "  \(sources[p.file.ngasFileId] ?? p.file.ngasFileId)  \(p.file.size) bytes  (\(p.fileClass.rawValue))")
        }
        out.append("relative path: \(relativePath)")
        out.append("PPR:")
        out.append(try PPRWriter.render(plan: plan, relativePath: relativePath))
        return out.joined(separator: "\n")
    }
}
