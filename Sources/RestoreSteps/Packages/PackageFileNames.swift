internal import FoundationEssentials
internal import Glibc

/// Finds the package file that holds a product the manifest names.
///
/// Archive packages rename products (alma-restore.md §5.1): MOUS-level files may carry a `member.` prefix,
/// Cycle 10–11 packages use compact names such as `member.uid___….s1.caltables.tgz` for `session_1`'s
/// caltables, while the manifest inside still uses the pipeline's names. The name is therefore looked up
/// among the files actually present, by these rules, most specific first; the first rule with exactly one
/// match wins, and a rule with several matches is an ambiguity (never a guess):
/// 1. the manifest's name itself;
/// 2. the name with any leading `member.` removed equals it;
/// 3. a file whose name ends with `.` + the manifest's name (another prefix);
/// 4. for `<ous>.session_<n>.caltables.tgz` (and `auxcaltables`): a file ending `s<n>.caltables.tgz` after a
///    `.` or `_` or at the start (the compact form).
public enum PackageFileNames {
    /// The outcome of a lookup.
    public enum Match: Sendable, Hashable {
        case found(String)
        case missing
        case ambiguous([String])
    }

    /// Looks `manifestName` up among `available` file names.
    public static func match(_ manifestName: String, in available: some Collection<String>) -> Match {
        let names = Array(available)
        let rules: [(String) -> Bool] = [
            { $0 == manifestName },
            { stripMember($0) == manifestName },
            { $0.hasSuffix("." + manifestName) },
            { candidate in compactCaltables(manifestName).map { matchesCompact(candidate, $0) } ?? false },
        ]
        for rule in rules {
            let hits = names.filter(rule).sorted()
            if hits.count == 1 { return .found(hits[0]) }
            if hits.count > 1 { return .ambiguous(hits) }
        }
        return .missing
    }

    /// `name` without a leading `member.`.
    public static func stripMember(_ name: String) -> String {
        name.hasPrefix("member.") ? String(name.dropFirst("member.".count)) : name
    }

    /// For `….session_<n>.caltables.tgz` / `….session_<n>.auxcaltables.tgz`: the compact suffix
    /// `s<n>.caltables.tgz` / `s<n>.auxcaltables.tgz`.
    static func compactCaltables(_ name: String) -> String? {
        for kind in ["caltables.tgz", "auxcaltables.tgz"] {
            guard name.hasSuffix("." + kind) else { continue }
            let stem = name.dropLast(kind.count + 1)
            guard let range = stem.ranges(of: "session_").last else { return nil }
            let number = stem[range.upperBound...]
            guard !number.isEmpty, number.allSatisfy(\.isASCIIDigit) else { return nil }
            return "s\(number).\(kind)"
        }
        return nil
    }

    private static func matchesCompact(_ candidate: String, _ suffix: String) -> Bool {
        guard candidate.hasSuffix(suffix) else { return false }
        let before = candidate.dropLast(suffix.count)
        return before.isEmpty || before.hasSuffix(".") || before.hasSuffix("_")
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
