internal import FoundationEssentials
internal import Glibc

/// One MOUS's directory in a download package, `<project>/science_goal.uid___…/group.uid___…/member.uid___…`,
/// with the identities its path carries (ALMA QA2 Data Products; alma-restore.md §9).
public struct MemberTree: Sendable, Codable, Hashable {
    /// Absolute path of the `member.uid___…` directory.
    public var path: String
    public var mous: AlmaUid
    /// From `group.uid___…`, when the tree has it.
    public var gous: AlmaUid?
    /// From `science_goal.uid___…`, when the tree has it.
    public var sous: AlmaUid?
    /// The directory above `science_goal.…`, when it looks like a project code.
    public var project: String?

    /// Reads the identities from `path`; nil unless its last component is `member.uid___<MOUS>`.
    public init?(path: String) {
        let components = path.split(separator: "/").map(String.init)
        guard let last = components.last, let mous = Self.uid(last, prefix: "member.") else { return nil }
        self.path = path
        self.mous = mous
        let parents = components.dropLast()
        gous = parents.last.flatMap { Self.uid($0, prefix: "group.") }
        sous = gous == nil ? nil : parents.dropLast().last.flatMap { Self.uid($0, prefix: "science_goal.") }
        let projectCandidate = sous == nil ? nil : parents.dropLast(2).last
        project = projectCandidate.flatMap { ProjectCode.isValid($0) ? $0 : nil }
    }

    public var calibration: String { path + "/calibration" }
    public var script: String { path + "/script" }
    public var raw: String { path + "/raw" }

    private static func uid(_ component: String, prefix: String) -> AlmaUid? {
        guard component.hasPrefix(prefix) else { return nil }
        return AlmaUid(lenient: String(component.dropFirst(prefix.count)))
    }
}

/// ALMA project codes, `2017.1.00886.L`.
public enum ProjectCode {
    public static func isValid(_ s: String) -> Bool {
        s.wholeMatch(of: #/[0-9]{4}\.[0-9A-Z]\.[0-9]{5}\.[A-Z]+/#) != nil
    }
}
