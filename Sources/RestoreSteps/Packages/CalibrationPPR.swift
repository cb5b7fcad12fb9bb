internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// The calibration run's PPR shipped in a download package (`script/*pprequest.xml`): where a restore takes
/// the ProjectStructure (ObsProject, ProjectStatus and OUSStatus refs, the scheduling block) and the
/// original order of the execution blocks from, when the package has one.
public struct CalibrationPPR: Sendable, Hashable {
    /// `ProjectSummary/ProposalCode`.
    public var proposalCode: String?
    /// `ObsUnitSetRef@entityId` (the ObsProject).
    public var obsProject: AlmaUid?
    /// `ObsUnitSetRef@partId`.
    public var obsUnitSetPartId: String?
    /// `ObsUnitSetTitle`.
    public var title: String?
    /// `ProjectStatusRef@entityId`.
    public var projectStatus: AlmaUid?
    /// `OUSStatusRef@entityId` (the MOUS).
    public var ousStatus: AlmaUid?
    /// `SchedBlockRef@entityId`, `SBStatusRef@entityId`, `SBTitle`.
    public var schedBlock: AlmaUid?
    public var schedBlockStatus: AlmaUid?
    public var schedBlockTitle: String?
    /// The AsdmIdentifiers as the pipeline reads them: EB, disk name and session.
    public var asdms: [PPRSummary.Asdm]
    /// How many SESSION_n intents the pipeline reads.
    public var sessionCount: Int

    /// Reads a pprequest.xml file.
    ///
    /// - Throws: ``RestoreError`` `pprUnreadable` when it is not a well-formed SciPipeRequest.
    public static func read(file path: String) throws(RestoreError) -> CalibrationPPR {
        let tree: XMLTree
        do { tree = try XMLTree.parse(file: path) } catch {
            throw RestoreError(.pprUnreadable, "the package's calibration PPR cannot be read: \(error.message)")
        }
        let name = PathString.lastComponent(path)
        let summary = try PPRSummary.summarise(tree, name: name)
        let root = tree.root!  // summarise checked it is a SciPipeRequest
        let structure = root.element("ProjectStructure").map { $0.element("AlmaStructure") ?? $0 }
        let identifier = root.element(path: [
            "ProcessingRequests", "ProcessingRequest", "DataSet", "SchedBlockSet", "SchedBlockIdentifier",
        ])
        func uid(_ node: XMLNode?) -> AlmaUid? {
            node?.attribute("entityId").flatMap { AlmaUid(lenient: $0.trimmingWhitespace) }
        }
        func text(_ node: XMLNode?) -> String? {
            guard let value = node?.text.trimmingWhitespace, !value.isEmpty else { return nil }
            return value
        }
        let obsUnitSetRef = structure?.element("ObsUnitSetRef")
        return CalibrationPPR(
            proposalCode: text(root.element(path: ["ProjectSummary", "ProposalCode"])),
            obsProject: uid(obsUnitSetRef),
            obsUnitSetPartId: obsUnitSetRef?.attribute("partId").map(\.trimmingWhitespace).flatMap {
                $0.isEmpty ? nil : $0
            },
            title: text(structure?.element("ObsUnitSetTitle")),
            projectStatus: uid(structure?.element("ProjectStatusRef")),
            ousStatus: uid(structure?.element("OUSStatusRef")),
            schedBlock: uid(identifier?.element("SchedBlockRef")),
            schedBlockStatus: uid(identifier?.element("SBStatusRef")),
            schedBlockTitle: text(identifier?.element("SBTitle")),
            asdms: summary.asdms,
            sessionCount: summary.sessionCount)
    }
}
