internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// The read-back check of a written PPR: brief §3.6 rules 1–10, plus agreement with the plan.
///
/// Most violations would fail *silently* in the pipeline (an EB lands in `session_1`, an element is dropped),
/// so a violation here is always a writer bug and must stop the restore before CASA.
public enum PPRInvariants {
    /// Parses `xml` and checks every rule; throws one error listing every violation.
    ///
    /// - Throws: ``RestoreError`` `pprInvariant`.
    public static func verify(_ xml: String, plan: RestorePlan, relativePath: RelativePath) throws(RestoreError) {
        let violations = self.violations(xml, plan: plan, relativePath: relativePath)
        guard violations.isEmpty else {
            throw RestoreError(
                .pprInvariant,
                "the written PPR breaks \(violations.count) rule(s): " + violations.joined(separator: "; "),
                hint: "This is a bug in the agent's PPR writer; the restore was stopped before CASA.")
        }
    }

    /// Every violation found (empty when the PPR is fine).
    public static func violations(_ xml: String, plan: RestorePlan, relativePath: RelativePath) -> [String] {
        let tree: XMLTree
        do {
            tree = try XMLTree.parse(string: xml, name: "PPR")
        } catch {
            return ["rule 10 (well-formed, namespaces declared): \(error.message)"]
        }
        guard let root = tree.root else { return ["no root element"] }
        var v: [String] = []

        // Rule 10: the root and its namespace.
        if root.localName != "SciPipeRequest" || root.namespaceURI != "Alma/pipelinescience/SciPipeRequest" {
            v.append("rule 10: root must be SciPipeRequest in namespace Alma/pipelinescience/SciPipeRequest")
        }

        // Rule 5: leaves are one plain text node, no whitespace around; no comments, CDATA or PIs anywhere.
        checkLeaves(root, path: root.localName, into: &v)

        // Rule 4: required elements and attributes.
        func required(_ node: XMLNode?, _ path: [String], _ label: String) -> XMLNode? {
            guard let found = node?.element(path: path) else {
                v.append("rule 4: missing \(label)")
                return nil
            }
            return found
        }
        let summary = root.element("ProjectSummary")
        if summary == nil { v.append("rule 4: missing ProjectSummary") }
        let proposal = required(summary, ["ProposalCode"], "ProjectSummary/ProposalCode")
        _ = required(summary, ["Observatory"], "ProjectSummary/Observatory")
        _ = required(summary, ["Telescope"], "ProjectSummary/Telescope")
        if let proposal, proposal.text != plan.record.project {
            v.append("ProposalCode \"\(proposal.text)\" is not the project \(plan.record.project)")
        }
        if let proposal, looksCastable(proposal.text) {
            v.append("rule 8: ProposalCode \"\(proposal.text)\" would be cast to a number")
        }
        let structure = root.element("ProjectStructure").map { $0.element("AlmaStructure") ?? $0 }
        if structure == nil { v.append("rule 4: missing ProjectStructure") }
        _ = required(structure, ["ObsUnitSetTitle"], "ObsUnitSetTitle")
        _ = required(structure, ["ObsUnitSetType"], "ObsUnitSetType")
        let refs: [(String, [String])] = [
            ("ObsUnitSetRef", ["entityId", "partId", "entityTypeName"]),
            ("ProjectStatusRef", ["entityId", "entityTypeName"]),
            ("OUSStatusRef", ["entityId", "entityTypeName"]),
        ]
        for (name, attributes) in refs {
            guard let ref = required(structure, [name], name) else { continue }
            for attribute in attributes where (ref.attribute(attribute) ?? "").isEmpty {
                v.append("rule 4: \(name)@\(attribute) is missing or empty (the pipeline would silently read \"\")")
            }
        }
        if let ous = structure?.element("OUSStatusRef")?.attribute("entityId"), ous != plan.mous.rawValue {
            v.append("OUSStatusRef@entityId \(ous) is not the MOUS \(plan.mous)")
        }

        // Rule 1: exactly one ProcessingRequest, SchedBlockSet, SchedBlockIdentifier.
        let requestsContainers = root.elements("ProcessingRequests")
        let requests = requestsContainers.flatMap { $0.elements("ProcessingRequest") }
        if requestsContainers.count != 1 || requests.count != 1 {
            v.append(
                "rule 1: \(requests.count) ProcessingRequest elements (in \(requestsContainers.count) ProcessingRequests), need exactly one"
            )
        }
        let request = requests.first
        let dataSets = request?.elements("DataSet") ?? []
        let sets = dataSets.flatMap { $0.elements("SchedBlockSet") }
        let identifiers = sets.flatMap { $0.elements("SchedBlockIdentifier") }
        if dataSets.count != 1 || sets.count != 1 {
            v.append(
                "rule 1: \(sets.count) SchedBlockSet elements, need exactly one (the pipeline stops: \"No valid processing requests\")"
            )
        }
        if identifiers.count != 1 {
            v.append(
                "rule 1: \(identifiers.count) SchedBlockIdentifier elements, need exactly one (the pipeline stops: \"No valid scheduling block sets\")"
            )
        }
        _ = required(request, ["ProcessingIntents"], "ProcessingIntents")
        let procedure = required(request, ["ProcessingProcedure"], "ProcessingProcedure")

        // Rule 2: RelativePath present, relative, safe, and the planned one.
        let identifier = identifiers.first
        if let pathNode = required(identifier, ["RelativePath"], "RelativePath") {
            let text = pathNode.text
            if RelativePath(text) == nil {
                v.append("rule 2: RelativePath \"\(text)\" is empty, absolute or has unsafe components")
            } else if text != relativePath.rawValue {
                v.append("rule 2: RelativePath \"\(text)\" is not the planned \(relativePath)")
            }
            if looksCastable(text) {
                v.append("rule 8: RelativePath \"\(text)\" would be cast to a number/boolean/literal")
            }
        }

        // Rule 3 + 9: commands and parameters.
        let commands = procedure?.elements("ProcessingCommand") ?? []
        if commands.isEmpty { v.append("rule 3: no ProcessingCommand (the pipeline stops: \"Empty commands list\")") }
        let allowedParameters: Set<String> = [
            "vis", "session", "products_dir", "copytoraw", "rawdata_dir", "lazy", "bdfflags", "ocorr_mode", "asis",
            "dbservice",
        ]
        for (i, command) in commands.enumerated() {
            let name = command.element("Command")?.text ?? ""
            if name != PPRWriter.command {
                v.append("rule 9: ProcessingCommand \(i + 1) runs \"\(name)\", expected \(PPRWriter.command)")
            }
            guard let parameters = command.element("ParameterSet") else {
                v.append(
                    "rule 3: ProcessingCommand \(i + 1) has no ParameterSet (the pipeline drops it and every later command)"
                )
                continue
            }
            for parameter in parameters.elements("Parameter") {
                let keyword = parameter.element("Keyword")?.text ?? ""
                if !allowedParameters.contains(keyword) { v.append("rule 9: unknown \(name) parameter \"\(keyword)\"") }
            }
        }

        // Rule 3 + 6: intents and SESSION_n.
        let intents = request?.element("ProcessingIntents")?.elements("Intents") ?? []
        var sessionNumbers: [Int] = []
        var sessionValues: [Int: String] = [:]
        for (i, intent) in intents.enumerated() {
            guard let keyword = intent.element("Keyword")?.text, !keyword.isEmpty else {
                v.append("rule 3: Intents \(i + 1) has no Keyword (the pipeline ignores it and every later intent)")
                continue
            }
            guard keyword.uppercased().hasPrefix("SESSION_") else { continue }
            let digits = keyword.dropFirst("SESSION_".count)
            guard keyword.hasPrefix("SESSION_"), let n = Int(digits), n >= 1, String(n) == digits else {
                v.append("rule 6: intent keyword \"\(keyword)\" is not SESSION_<n> in upper case with n >= 1")
                continue
            }
            if sessionValues[n] != nil {
                v.append("rule 6: SESSION_\(n) appears twice (the later overwrites the earlier)")
            }
            sessionNumbers.append(n)
            let value = intent.element("Value")?.text ?? ""
            sessionValues[n] = value
            if !value.isEmpty {
                let parts = value.components(separatedBy: " | ")
                for part in parts where AlmaUid(lenient: part) == nil {
                    v.append(
                        "rule 6: SESSION_\(n) value \"\(value)\" is not EB uids joined by \" | \" (bad part \"\(part)\")"
                    )
                }
                if looksCastable(value) { v.append("rule 8: SESSION_\(n) value \"\(value)\" would be cast") }
            }
        }
        let expectedNumbers = Array(1...max(plan.sessions.sessions.count, 1))
        if sessionNumbers.sorted() != (plan.sessions.sessions.isEmpty ? [] : expectedNumbers) {
            v.append(
                "rule 6: SESSION intents are \(sessionNumbers.map { "SESSION_\($0)" }), expected SESSION_1…SESSION_\(plan.sessions.sessions.count) without gaps"
            )
        }

        // Rules 3, 7: AsdmIdentifiers.
        let asdms = identifier?.elements("AsdmIdentifier") ?? []
        if asdms.isEmpty { v.append("rule 3: no AsdmIdentifier (the pipeline stops: \"Empty ASDM list\")") }
        var seenDiskNames: [String] = []
        for (i, asdm) in asdms.enumerated() {
            guard let id = asdm.element(path: ["AsdmRef", "ExecBlockId"])?.text, !id.isEmpty else {
                v.append(
                    "rule 3: AsdmIdentifier \(i + 1) has no AsdmRef/ExecBlockId (the pipeline drops it and every later one)"
                )
                continue
            }
            let disk = asdm.element("AsdmDiskName")?.text ?? ""
            guard let uid = AlmaUid(id) else {
                v.append("rule 7: ExecBlockId \"\(id)\" is not an EB uid")
                continue
            }
            if disk != AsdmDiskName(uid).rawValue {
                v.append(
                    "rule 7: AsdmDiskName \"\(disk)\" of \(uid) must be exactly \(AsdmDiskName(uid).rawValue) (no suffix, no whitespace)"
                )
            }
            if looksCastable(disk) { v.append("rule 8: AsdmDiskName \"\(disk)\" would be cast") }
            seenDiskNames.append(disk)
        }
        let plannedDiskNames = plan.execBlocks.map(\.asdmDiskName.rawValue)
        if seenDiskNames != plannedDiskNames {
            v.append("the PPR's ASDMs \(seenDiskNames) are not the planned \(plannedDiskNames)")
        }

        // Rule 6, end to end: the pipeline's own matching gives every planned EB its planned session, and
        // no session lists an EB that is not restored.
        if let summary = try? PPRSummary.summarise(tree, name: "PPR") {
            let planned = Dictionary(
                plan.execBlocks.map { ($0.asdmDiskName.rawValue, $0.sessionName) }, uniquingKeysWith: { a, _ in a })
            for asdm in summary.asdms {
                if let expected = planned[asdm.asdmDiskName], expected != asdm.session {
                    v.append(
                        "rule 6: the pipeline would put \(asdm.asdmDiskName) in \(asdm.session), the plan says \(expected)"
                    )
                }
            }
            let restored = Set(plannedDiskNames)
            for (n, value) in sessionValues.sorted(by: { $0.key < $1.key }) where !value.isEmpty {
                for part in value.components(separatedBy: " | ") {
                    let name = PPRSummary.sanitizeUid(part)
                    if !restored.contains(name) {
                        v.append("rule 6: SESSION_\(n) lists \(part), which is not an AsdmIdentifier of the PPR")
                    }
                }
            }
        }
        return v
    }

    /// Leaves must hold exactly one text node without surrounding whitespace (or nothing, where that is
    /// allowed); comments, CDATA and processing instructions are refused everywhere.
    private static func checkLeaves(_ node: XMLNode, path: String, into v: inout [String]) {
        let children = node.children
        for child in children
        where child.kind == .comment || child.kind == .cdata || child.kind == .processingInstruction
            || child.kind == .entityReference
        {
            v.append("rule 5: \(path) contains a \(child.kind) node")
        }
        let elements = children.filter { $0.kind == .element }
        if elements.isEmpty {
            let texts = children.filter { $0.kind == .text }
            let emptyAllowed =
                ["Value", "ParameterSet"].contains(node.localName) || node.attribute("entityId") != nil
                || node.localName == "SciPipeRequestEntity"
            if texts.isEmpty {
                if !emptyAllowed { v.append("rule 5: \(path) is empty (the pipeline cannot read an empty leaf)") }
            } else if texts.count > 1 || children.count != 1 {
                v.append("rule 5: \(path) is not a single text node")
            } else {
                let text = texts[0].text
                if text != text.trimmingWhitespace || text.isEmpty {
                    v.append("rule 5: \(path) has whitespace around its value \"\(text)\"")
                }
            }
        } else {
            for text in children where text.kind == .text && !text.text.trimmingWhitespace.isEmpty {
                v.append("rule 5: \(path) mixes text \"\(text.text.trimmingWhitespace)\" with elements")
            }
            for element in elements { checkLeaves(element, path: "\(path)/\(element.localName)", into: &v) }
        }
    }

    /// Whether the pipeline's caster would turn `text` into something other than a string (rule 8).
    static func looksCastable(_ text: String) -> Bool {
        let trimmed = text.trimmingWhitespace
        // Python's int()/float() also accept digit-group underscores ("1_000").
        if Double(trimmed) != nil || Int(trimmed) != nil
            || Double(trimmed.replacingAll("_", with: "")) != nil
        {
            return true
        }
        if ["true", "false"].contains(trimmed.lowercased()) { return true }
        if let first = trimmed.first, "[({".contains(first) { return true }
        return false
    }
}
