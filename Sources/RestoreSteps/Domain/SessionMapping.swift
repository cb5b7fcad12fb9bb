internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// One numbered session: `SESSION_<number>` in the PPR, `session_<number>` in the manifest.
public struct NumberedSession: Sendable, Codable, Hashable {
    /// 1-based, contiguous.
    public var number: Int
    /// The session's id in the source (`AQUA_SESSION.SESSIONID`, OUSStatus `entityPartId`).
    public var id: String
    /// The time the session was ordered by (its end time, or the substitute the rule chose); nil if none.
    public var sortTime: UTCTime?
    /// Every EB of the session, any QA0 status, by start time then uid.
    public var execBlocks: [AlmaUid]

    public init(number: Int, id: String, sortTime: UTCTime?, execBlocks: [AlmaUid]) {
        self.number = number
        self.id = id
        self.sortTime = sortTime
        self.execBlocks = execBlocks
    }

    /// `SESSION_<n>`, the PPR intent keyword.
    public var keyword: String { "SESSION_\(number)" }
    /// `session_<n>`, the manifest's and the pipeline's session name.
    public var name: String { "session_\(number)" }
}

/// The numbered sessions of a MOUS and which session each EB is in.
public struct SessionAssignment: Sendable, Codable, Hashable {
    /// Where the sessions came from.
    public enum Source: String, Sendable, Codable, Hashable {
        /// The OUSStatus XML (`Session` elements with `ExecBlockRef`s).
        case ousStatusXml
        /// `AQUA_SESSION` rows joined through `AQUA_EXECBLOCK.SESSIONID`.
        case aquaSessions
        /// A download package's pipeline manifest (`<session name="session_N">`), the numbering the calibration
        /// products were made with.
        case pipelineManifest
    }

    /// The authority used.
    public var source: Source
    /// Sessions numbered 1…N in order; sessions without restorable EBs stay (they become empty SESSION_n).
    public var sessions: [NumberedSession]
    /// Things a person may want to know (a NULL end time replaced, an EB in two sessions, …).
    public var notes: [String]

    public init(source: Source, sessions: [NumberedSession], notes: [String]) {
        self.source = source
        self.sessions = sessions
        self.notes = notes
    }

    /// The number of the session holding `eb` (the lowest if it is in several, as the pipeline does).
    public func sessionNumber(of eb: AlmaUid) -> Int? {
        sessions.first { $0.execBlocks.contains(eb) }?.number
    }
}

/// Computes `SESSION_1…N` for a MOUS.
///
/// Authority: the OUSStatus XML when the record has one and it references at least one EB; otherwise the
/// `AQUA_SESSION` rows plus the sessions the EBs point at (INTERFACES.md §1). Either way the order is
/// deterministic: by end time; a session without end time uses the latest end time of its EBs, then its
/// start time, then the earliest start of its EBs; ties and undated sessions are ordered by id, then by
/// position in the source. Undated sessions go last, and a note says so (never silently). All EBs count,
/// whatever their QA0 status, so a Failed session between two Pass sessions keeps its number; sessions
/// with no EB at all are kept as gaps.
public enum SessionMapping {
    /// Numbers the sessions of `record`.
    ///
    /// - Throws: ``RestoreError`` `inconsistentMetadata` when the OUSStatus XML cannot be parsed.
    public static func compute(for record: MousRecord) throws(RestoreError) -> SessionAssignment {
        var candidates: [Candidate] = []
        var notes: [String] = []
        var source = SessionAssignment.Source.aquaSessions

        if let xml = record.ousStatusXml, !xml.trimmingWhitespaceAndNewlines().isEmpty {
            let parsed: OUSStatusSessions
            do {
                parsed = try OUSStatusSessions.read(xml)
            } catch {
                throw RestoreError(
                    .inconsistentMetadata, "the OUSStatus XML of \(record.mous) cannot be read: \(error.message)",
                    hint: "Fix or remove ousStatusXml in the catalogue import file and import it again.")
            }
            if parsed.sessions.contains(where: { !$0.execBlocks.isEmpty }) {
                source = .ousStatusXml
                notes += parsed.notes
                candidates = parsed.sessions.enumerated().map { index, session in
                    Candidate(
                        id: session.id, position: index, startTime: session.startTime, endTime: session.endTime,
                        execBlocks: session.execBlocks)
                }
            } else {
                notes.append("the OUSStatus XML lists no ExecBlockRef; sessions taken from AQUA_SESSION rows")
            }
        }

        if source == .aquaSessions {
            var byId: [String: Int] = [:]
            for (index, session) in record.sessions.enumerated() where byId[session.id] == nil {
                byId[session.id] = candidates.count
                candidates.append(
                    Candidate(
                        id: session.id, position: index, startTime: session.startTime, endTime: session.endTime,
                        execBlocks: []))
            }
            for eb in record.execBlocks {
                guard let id = eb.sessionId else { continue }
                if byId[id] == nil {
                    notes.append("session \(id) of EB \(eb.uid) has no AQUA_SESSION row; ordered by its EBs' times")
                    byId[id] = candidates.count
                    candidates.append(
                        Candidate(
                            id: id, position: record.sessions.count + candidates.count, startTime: nil, endTime: nil,
                            execBlocks: []))
                }
                candidates[byId[id]!].execBlocks.append(eb.uid)
            }
        }

        let ebs = Dictionary(record.execBlocks.map { ($0.uid, $0) }, uniquingKeysWith: { first, _ in first })
        for index in candidates.indices {
            candidates[index].resolveSortTime(ebs: ebs, notes: &notes)
        }
        let ordered = candidates.sorted(by: Candidate.precedes)
        if ordered.contains(where: { $0.sortTime == nil }) {
            let undated = ordered.filter { $0.sortTime == nil }.map(\.id)
            notes.append(
                "no time at all for session(s) \(undated.joined(separator: ", ")): numbered after the dated sessions, by id"
            )
        }

        var seen: [AlmaUid: Int] = [:]
        var sessions: [NumberedSession] = []
        for (offset, candidate) in ordered.enumerated() {
            let number = offset + 1
            let members = candidate.execBlocks.sorted { a, b in
                let ta = ebs[a]?.startTime
                let tb = ebs[b]?.startTime
                if ta != tb {
                    return (ta ?? UTCTime(millisecondsSince1970: .max)) < (tb ?? UTCTime(millisecondsSince1970: .max))
                }
                return a < b
            }
            var kept: [AlmaUid] = []
            for eb in members {
                if let earlier = seen[eb] {
                    notes.append(
                        "EB \(eb) is in sessions \(earlier) and \(number); it counts in SESSION_\(earlier) (the pipeline takes the lower)"
                    )
                } else {
                    seen[eb] = number
                    kept.append(eb)
                }
            }
            sessions.append(
                NumberedSession(number: number, id: candidate.id, sortTime: candidate.sortTime, execBlocks: kept))
        }
        return SessionAssignment(source: source, sessions: sessions, notes: notes)
    }

    private struct Candidate {
        var id: String
        var position: Int
        var startTime: UTCTime?
        var endTime: UTCTime?
        var execBlocks: [AlmaUid]
        var sortTime: UTCTime?

        mutating func resolveSortTime(ebs: [AlmaUid: MousRecord.ExecBlock], notes: inout [String]) {
            if let endTime {
                sortTime = endTime
                return
            }
            let members = execBlocks.compactMap { ebs[$0] }
            if let latest = members.compactMap(\.endTime).max() {
                sortTime = latest
                notes.append("session \(id) has no end time; ordered by its latest EB end time \(latest)")
            } else if let startTime {
                sortTime = startTime
                notes.append(
                    "session \(id) has no end time and no EB end times; ordered by its start time \(startTime)")
            } else if let earliest = members.compactMap(\.startTime).min() {
                sortTime = earliest
                notes.append(
                    "session \(id) has no end or start time; ordered by its earliest EB start time \(earliest)")
            }
        }

        static func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
            switch (a.sortTime, b.sortTime) {
            case let (x?, y?) where x != y: return x < y
            case (.some, .none): return true
            case (.none, .some): return false
            default: return a.id != b.id ? a.id < b.id : a.position < b.position
            }
        }
    }
}
