internal import Delivery
public import FoundationEssentials
internal import Glibc

/// Writes the restore SciPipeRequest (PPR) for a ``RestorePlan`` — exactly the structure brief §3 describes —
/// and reads it back to check every rule of brief §3.6 before it may reach CASA.
///
/// Choices (brief §3.5, §6, INTERFACES.md §3):
/// - `ProcedureTitle` `hifa_restore`, one `ProcessingCommand` `hifa_restoredata` with parameters
///   `copytoraw=true` and `ocorr_mode=ca`. Our staging puts the products flat in `products/` and the manifest
///   in `rawdata/`; with `copytoraw=true` the task copies the manifest's files from `../products` to
///   `../rawdata` itself (the shipped recipes' `copytoraw=False` would need every product in `rawdata/`).
///   `vis` and `session` are not written: `executeppr` always replaces them from the DataSet and intents.
/// - Namespaces as in the pipeline's own example PPR (`executeppr_test.py`): root in the default namespace
///   `Alma/pipelinescience/SciPipeRequest` with `xsi:type`; the leaves of ProjectSummary, ProjectStructure,
///   Intents, RelativePath, SBTitle, AsdmDiskName and ResultsProcessing reset it with `xmlns=""`; the refs
///   declare their own prefixes (`ns1`…`ns6`); Command/Parameter stay in the default namespace. The parser
///   matches local names only, but every prefix must be declared (rule 10).
/// - Intents: `INTERFEROMETRY_STANDARD_OBSERVING_MODE=Undefined`, then `SESSION_1…N` (every session, empty
///   `Value` for sessions without a restorable EB; sanitised EB uids `uid___A002_X…_X…`, as the pipeline's own PPRs
///   spell them, joined by `" | "`).
/// - One `SchedBlockIdentifier` holding `RelativePath` and one `AsdmIdentifier` per QA0-Pass EB.
public enum PPRWriter {
    /// The PPR fields that describe who made the request rather than what to restore.
    public struct Settings: Sendable, Hashable {
        /// `ProjectSummary/ProcessingSite`.
        public var processingSite: String
        /// `ProjectSummary/Operator`.
        public var operatorName: String
        /// `ProjectSummary/Mode`.
        public var mode: String
        /// `ProjectSummary/Version` (the agent's version).
        public var version: String

        public init(
            processingSite: String = "Undefined", operatorName: String = "dropbox-agent", mode: String = "SCIENCE",
            version: String = "Undefined"
        ) {
            self.processingSite = processingSite
            self.operatorName = operatorName
            self.mode = mode
            self.version = version
        }
    }

    /// `ProcedureTitle`.
    public static let procedureTitle = "hifa_restore"
    /// The one processing command.
    public static let command = "hifa_restoredata"
    /// Its parameters, in the order written.
    public static let parameters: [(keyword: String, value: String)] = [("copytoraw", "true"), ("ocorr_mode", "ca")]

    /// Renders the PPR text (not yet checked; ``write(plan:relativePath:to:creationTime:settings:)`` checks).
    ///
    /// - Throws: ``RestoreError`` `pprInvariant` if libxml2's writer fails (a bug).
    public static func render(
        plan: RestorePlan, relativePath: RelativePath, creationTime: Date = Date(), settings: Settings = Settings()
    ) throws(RestoreError) -> String {
        do {
            return try renderUnchecked(
                plan: plan, relativePath: relativePath, creationTime: creationTime, settings: settings)
        } catch {
            throw RestoreError(
                .pprInvariant, "writing the PPR failed: \(error.message)", hint: "This is a bug in the agent.")
        }
    }

    /// Renders, reads back and checks the PPR, then writes it atomically to `path`.
    ///
    /// - Returns: the text written.
    /// - Throws: ``RestoreError`` `pprInvariant` when the read-back check fails (nothing is written), or
    ///   `pprWriteFailed` when the file cannot be written.
    @discardableResult
    public static func write(
        plan: RestorePlan, relativePath: RelativePath, to path: URL, creationTime: Date = Date(),
        settings: Settings = Settings()
    ) throws(RestoreError) -> String {
        let text = try render(plan: plan, relativePath: relativePath, creationTime: creationTime, settings: settings)
        try PPRInvariants.verify(text, plan: plan, relativePath: relativePath)
        do {
            try Data(text.utf8).write(to: path, options: .atomic)
        } catch {
            throw RestoreError(
                .pprWriteFailed, "cannot write the PPR to \(path.path): \(ErrorText.describe(error))",
                isTransient: false)
        }
        return text
    }

    /// `PPR_<sanitized MOUS>.xml`, the file name we use in `working/`.
    public static func fileName(for plan: RestorePlan) -> String { "PPR_\(plan.mous.sanitized).xml" }

    private static let rootNamespace = "Alma/pipelinescience/SciPipeRequest"

    private static func renderUnchecked(
        plan: RestorePlan, relativePath: RelativePath, creationTime: Date, settings: Settings
    ) throws(XMLWriteError) -> String {
        let r = plan.record
        let w = try XMLWriter()
        func leaf(_ name: String, _ value: String) throws(XMLWriteError) {
            try w.leaf(name, value.trimmingWhitespace, attributes: [("xmlns", "")])
        }
        func ref(
            _ name: String, prefix: String, namespace: String, _ attributes: [(String, String)]
        ) throws(XMLWriteError) {
            try w.start(name, prefix: prefix, namespaceURI: namespace)
            for (key, value) in attributes { try w.attribute(key, value) }
            try w.end()
        }

        try w.start("SciPipeRequest")
        try w.attribute("xmlns", rootNamespace)
        try w.attribute("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance")
        try w.attribute("xsi:type", "SciPipeRequest")

        try w.start("SciPipeRequestEntity")
        try w.attribute("entityId", "UID_UNASSIGNED")
        try w.attribute("entityTypeName", "SciPipeRequest")
        try w.attribute("datamodelVersion", "0.1")
        try w.end()

        try w.start("ProjectSummary")
        try leaf("ProposalCode", r.project)
        try leaf("Observatory", "ALMA")
        try leaf("Telescope", "ALMA")
        try leaf("ProcessingSite", settings.processingSite)
        try leaf("Operator", settings.operatorName)
        try leaf("Mode", settings.mode)
        try leaf("Version", settings.version)
        try leaf("CreationTime", String(UTCTime(creationTime).fixedWidthDescription.dropLast()))
        try w.end()

        try w.start("ProjectStructure")
        try w.start("AlmaStructure")
        try ref(
            "ObsUnitSetRef", prefix: "ns1", namespace: "Alma/ObsPrep/ObsProject",
            [("entityId", r.obsProject.rawValue), ("partId", r.obsUnitSetPartId), ("entityTypeName", "ObsProject")])
        try leaf("ObsUnitSetTitle", r.title)
        try leaf("ObsUnitSetType", "Member")
        try ref(
            "ProjectStatusRef", prefix: "ns2", namespace: "Alma/Scheduling/ProjectStatus",
            [("entityId", r.projectStatus.rawValue), ("entityTypeName", "ProjectStatus")])
        try ref(
            "OUSStatusRef", prefix: "ns3", namespace: "Alma/Scheduling/OUSStatus",
            [("entityId", r.mous.rawValue), ("entityTypeName", "OUSStatus")])
        try w.end()
        try w.end()

        try w.start("ProcessingRequests")
        try w.start("ProcessingRequest")

        try w.start("ProcessingIntents")
        for (keyword, value) in [("INTERFEROMETRY_STANDARD_OBSERVING_MODE", "Undefined")]
            + plan.sessionIntents.map({ ($0.keyword, $0.value) })
        {
            try w.start("Intents")
            try leaf("Keyword", keyword)
            try leaf("Value", value)
            try w.end()
        }
        try w.end()

        try w.start("ProcessingProcedure")
        try leaf("ProcedureTitle", procedureTitle)
        try w.start("ProcessingCommand")
        try w.leaf("Command", command)
        try w.start("ParameterSet")
        for (keyword, value) in parameters {
            try w.start("Parameter")
            try w.leaf("Keyword", keyword)
            try w.leaf("Value", value)
            try w.end()
        }
        try w.end()  // ParameterSet
        try w.end()  // ProcessingCommand
        try w.end()  // ProcessingProcedure

        try w.start("DataSet")
        try w.start("SchedBlockSet")
        try w.start("SchedBlockIdentifier")
        try leaf("RelativePath", relativePath.rawValue)
        try ref(
            "SchedBlockRef", prefix: "ns4", namespace: "Alma/ObsPrep/SchedBlock",
            [("entityId", r.schedBlock.uid.rawValue), ("entityTypeName", "SchedBlock"), ("documentVersion", "1")])
        try ref(
            "SBStatusRef", prefix: "ns5", namespace: "Alma/Scheduling/SBStatus",
            [("entityId", r.schedBlock.statusUid.rawValue), ("entityTypeName", "SBStatus")])
        try leaf("SBTitle", r.schedBlock.name)
        for eb in plan.execBlocks {
            try w.start("AsdmIdentifier")
            try w.start("AsdmRef", prefix: "ns6", namespaceURI: "Alma/ValueTypes")
            try w.start("ExecBlockId", prefix: "ns6", namespaceURI: nil)
            try w.text(eb.uid.rawValue)
            try w.end()
            try w.end()
            try leaf("AsdmDiskName", eb.asdmDiskName.rawValue)
            try w.end()
        }
        try w.end()  // SchedBlockIdentifier
        try w.end()  // SchedBlockSet
        try w.end()  // DataSet

        try w.end()  // ProcessingRequest
        try w.end()  // ProcessingRequests

        try w.start("ResultsProcessing")
        try leaf("ArchiveResults", "false")
        try leaf("CleanUpDisk", "false")
        try leaf("UpdateProjectLifeCycle", "false")
        try leaf("NotifyOperatorWhenDone", "false")
        try leaf("PipelineOperatorAdress", "Unknown")  // sic: the pipeline's spelling
        try w.end()

        try w.end()  // SciPipeRequest
        return try w.finish()
    }
}

extension RestoreError.Code {
    /// The PPR file could not be written.
    public static let pprWriteFailed: Self = "pprWriteFailed"
}
