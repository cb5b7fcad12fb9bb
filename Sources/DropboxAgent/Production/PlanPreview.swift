import Foundation
import RestoreSteps

/// `validate --plan`: what a restore of the request would fetch, and the PPR it would write.
enum PlanPreview {
    static func render(for request: RestoreRequest, configuration: AgentConfiguration) throws -> String {
        let catalogue = try SQLiteCatalogue(path: configuration.catalogue.sqlite!)
        let record = try catalogue.mous(request.mous)
        let plan = try Restorability.plan(for: request, record: record, now: Date(), allowProprietary: configuration.catalogue.allowProprietary)
        let relativePath = RelativePath(plan: plan, time: Date())
        var out = ["plan:"] + plan.summaryLines.map { "  " + $0 }
        out.append("files to fetch:")
        for eb in plan.execBlocks { out.append("  \(eb.asdm.ngasFileId)  \(eb.asdm.size) bytes  (ASDM of \(eb.uid), \(eb.sessionName))") }
        for p in plan.products { out.append("  \(p.file.ngasFileId)  \(p.file.size) bytes  (\(p.fileClass.rawValue))") }
        out.append("relative path: \(relativePath)")
        out.append("PPR:")
        out.append(try PPRWriter.render(plan: plan, relativePath: relativePath))
        return out.joined(separator: "\n")
    }
}
