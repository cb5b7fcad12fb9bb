internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// The sessions an OUSStatus XML document lists, read leniently.
///
/// No public OUSStatus sample exists (brief §4: the spelling is inferred from the Castor binding names
/// `OUSStatus.getSession()` → `SessionT` with `entityPartId`, `ExecBlockRef`/`ExecBlockId`, `EndTime`). So the
/// reader matches local names only (any namespace or prefix) and accepts every plausible spelling:
/// - a session is an element named `Session` or `SessionT`;
/// - its id is `@entityPartId` (or `@partId`, `@id`), else its position;
/// - its EBs are descendant `ExecBlockRef` elements, the uid taken from `@ExecBlockId`, `@execBlockId`,
///   `@entityId`, a child `ExecBlockId`, or the element's own text, in `uid://` or `uid___` form;
/// - its end time is a child `EndTime` (or attribute `EndTime`/`endTime`) in any ``UTCTime`` spelling;
///   likewise `StartTime`.
struct OUSStatusSessions {
    struct Session {
        var id: String
        var startTime: UTCTime?
        var endTime: UTCTime?
        var execBlocks: [AlmaUid]
    }

    var sessions: [Session]
    /// Things that were odd but tolerated (an unreadable EB reference, a bad time).
    var notes: [String]

    /// Reads the sessions of `xml`.
    static func read(_ xml: String) throws(XMLReadError) -> OUSStatusSessions {
        let tree = try XMLTree.parse(string: xml, name: "OUSStatus XML")
        guard let root = tree.root else { return OUSStatusSessions(sessions: [], notes: []) }
        var nodes: [XMLNode] = []
        collectSessions(root, into: &nodes)
        var notes: [String] = []
        var sessions: [Session] = []
        for (index, node) in nodes.enumerated() {
            let id =
                node.attribute("entityPartId") ?? node.attribute("partId") ?? node.attribute("id")
                ?? "session #\(index + 1)"
            var execBlocks: [AlmaUid] = []
            for ref in node.descendants("ExecBlockRef") {
                let raw =
                    ref.attribute("ExecBlockId") ?? ref.attribute("execBlockId") ?? ref.attribute("entityId")
                    ?? ref.element("ExecBlockId")?.trimmedText ?? ref.trimmedText
                if let uid = AlmaUid(lenient: raw.trimmingWhitespaceAndNewlines()) {
                    if !execBlocks.contains(uid) { execBlocks.append(uid) }
                } else {
                    notes.append(
                        "OUSStatus session \(id): ExecBlockRef at line \(ref.line) has no readable uid (\"\(raw)\")")
                }
            }
            sessions.append(
                Session(
                    id: id,
                    startTime: time(node, "StartTime", id: id, notes: &notes),
                    endTime: time(node, "EndTime", id: id, notes: &notes),
                    execBlocks: execBlocks
                ))
        }
        return OUSStatusSessions(sessions: sessions, notes: notes)
    }

    /// Session elements, not descending into a session (nested sessions are not a thing).
    private static func collectSessions(_ node: XMLNode, into result: inout [XMLNode]) {
        for child in node.elements {
            if child.localName == "Session" || child.localName == "SessionT" {
                result.append(child)
            } else {
                collectSessions(child, into: &result)
            }
        }
    }

    private static func time(_ node: XMLNode, _ name: String, id: String, notes: inout [String]) -> UTCTime? {
        let lowerFirst = name.prefix(1).lowercased() + name.dropFirst()
        guard let raw = node.element(name)?.trimmedText ?? node.attribute(name) ?? node.attribute(lowerFirst),
            !raw.isEmpty
        else {
            return nil
        }
        guard let time = UTCTime(parsing: raw) else {
            notes.append("OUSStatus session \(id): \(name) \"\(raw)\" is not a time; treated as missing")
            return nil
        }
        return time
    }
}
