internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// What the pipeline would take from a PPR: read with the matching rules of `executeppr` (brief §3.2–3.4).
///
/// Works on any PPR (ours, or one shipped with the products), for tests and `validate --plan`.
public struct PPRSummary: Sendable, Hashable {
    /// One `Intents` entry.
    public struct Intent: Sendable, Hashable {
        public var keyword: String
        public var value: String
    }

    /// One `AsdmIdentifier` and the session the pipeline would give it.
    public struct Asdm: Sendable, Hashable {
        /// `AsdmRef/ExecBlockId`.
        public var execBlockId: String
        /// `AsdmDiskName`.
        public var asdmDiskName: String
        /// `session_<n>` by the pipeline's rule: the first `SESSION_n` (read from 1 up to the first missing
        /// number) whose `" | "`-separated list holds the sanitized name; `session_1` if none does.
        public var session: String
    }

    /// `ProjectSummary/ProposalCode`.
    public var proposalCode: String?
    /// `OUSStatusRef@entityId`.
    public var ousStatusEntityId: String?
    /// `RelativePath` of the first SchedBlockIdentifier.
    public var relativePath: String?
    /// `ProcedureTitle`, or nil.
    public var procedureTitle: String?
    /// The `Command` of each ProcessingCommand.
    public var commands: [String]
    /// Every intent, in document order (raw text, not trimmed).
    public var intents: [Intent]
    /// The number of SESSION_n intents the pipeline reads (1…N up to the first missing number).
    public var sessionCount: Int
    /// The ASDMs in order, with their sessions.
    public var asdms: [Asdm]

    /// Reads a PPR from text.
    ///
    /// - Throws: ``RestoreError`` `pprUnreadable` when it is not a well-formed SciPipeRequest.
    public static func read(_ xml: String, name: String = "PPR") throws(RestoreError) -> PPRSummary {
        let tree: XMLTree
        do {
            tree = try XMLTree.parse(string: xml, name: name)
        } catch {
            throw RestoreError(.pprUnreadable, error.message)
        }
        return try summarise(tree, name: name)
    }

    /// Reads the PPR file at `path`.
    public static func read(file path: String) throws(RestoreError) -> PPRSummary {
        let tree: XMLTree
        do {
            tree = try XMLTree.parse(file: path)
        } catch {
            throw RestoreError(.pprUnreadable, error.message)
        }
        return try summarise(tree, name: path)
    }

    static func summarise(_ tree: XMLTree, name: String) throws(RestoreError) -> PPRSummary {
        guard let root = tree.root, root.localName == "SciPipeRequest" else {
            throw RestoreError(.pprUnreadable, "\(name) is not a SciPipeRequest (root <\(tree.root?.localName ?? "")>)")
        }
        let request = root.element(path: ["ProcessingRequests", "ProcessingRequest"])
        let structure = root.element("ProjectStructure").map { $0.element("AlmaStructure") ?? $0 }
        let identifier = request?.element(path: ["DataSet", "SchedBlockSet", "SchedBlockIdentifier"])

        let intents = (request?.element("ProcessingIntents")?.elements("Intents") ?? []).map { intent in
            Intent(keyword: intent.element("Keyword")?.text ?? "", value: intent.element("Value")?.text ?? "")
        }
        // The pipeline builds a dict (a later duplicate overwrites), then reads SESSION_1, SESSION_2, … until one is missing.
        var byKeyword: [String: String] = [:]
        for intent in intents { byKeyword[intent.keyword] = intent.value }
        var sessionLists: [[String]] = []
        while let value = byKeyword["SESSION_\(sessionLists.count + 1)"] {
            sessionLists.append(value.components(separatedBy: " | ").map(sanitizeUid))
        }

        let asdms = (identifier?.elements("AsdmIdentifier") ?? []).map { asdm in
            let diskName = asdm.element("AsdmDiskName")?.text ?? ""
            let key = sanitizeForMS(diskName)
            let index = sessionLists.firstIndex { $0.contains(key) }
            return Asdm(
                execBlockId: asdm.element(path: ["AsdmRef", "ExecBlockId"])?.text ?? "", asdmDiskName: diskName,
                session: "session_\((index ?? 0) + 1)")
        }

        return PPRSummary(
            proposalCode: root.element(path: ["ProjectSummary", "ProposalCode"])?.text,
            ousStatusEntityId: structure?.element("OUSStatusRef")?.attribute("entityId"),
            relativePath: identifier?.element("RelativePath")?.text,
            procedureTitle: request?.element(path: ["ProcessingProcedure", "ProcedureTitle"])?.text,
            commands: (request?.element("ProcessingProcedure")?.elements("ProcessingCommand") ?? []).map {
                $0.element("Command")?.text ?? ""
            },
            intents: intents,
            sessionCount: sessionLists.count,
            asdms: asdms
        )
    }

    /// `:` and `/` → `_` (the pipeline's sanitising of SESSION values).
    static func sanitizeUid(_ text: String) -> String {
        text.replacingAll(":", with: "_").replacingAll("/", with: "_")
    }

    /// The pipeline's `_sanitize_for_ms`, the union of the versions seen: strips `.ms`, `_target(s).ms`,
    /// `_targets_line.ms`, `_imaging(_line).ms`, `_cont.ms`, repeatedly. (The 2018 code compared exactly; our
    /// disk names never carry a suffix, so both agree on them.)
    static func sanitizeForMS(_ name: String) -> String {
        let suffixes = [
            "_targets_line.ms", "_imaging_line.ms", "_targets.ms", "_target.ms", "_imaging.ms", "_cont.ms", ".ms",
        ]
        var result = name
        var changed = true
        while changed {
            changed = false
            for suffix in suffixes where result.hasSuffix(suffix) {
                result.removeLast(suffix.count)
                changed = true
                break
            }
        }
        return result
    }
}
