/// "Did you mean …?" for a mistyped subcommand (`dropbox-agent stauts`).
enum CommandSuggestion {
    /// A message when the first argument is not an option, not a known subcommand and close to one; else nil
    /// (ArgumentParser reports everything else).
    static func check(_ arguments: [String], known: [String]) -> String? {
        guard let first = arguments.first, !first.hasPrefix("-"), !known.contains(first), first != "help" else {
            return nil
        }
        let ranked = known.map { ($0, distance(first.lowercased(), $0)) }.sorted { $0.1 < $1.1 }
        guard let best = ranked.first else { return nil }
        let close = best.1 <= max(1, best.0.count / 3) || best.0.hasPrefix(first.lowercased())
        return "dropbox-agent: unknown command '\(first)'." + (close ? " Did you mean '\(best.0)'?" : "")
            + " Commands: \(known.joined(separator: ", ")) (see `dropbox-agent --help`)."
    }

    /// Levenshtein distance (edits: insert, delete, substitute).
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        guard !a.isEmpty else { return b.count }
        guard !b.isEmpty else { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
