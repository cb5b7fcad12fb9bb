/// Lexical checks of archive member names and link targets.
enum ArchivePath {
    /// The normalised relative components of `name`, or `nil` if it is absolute, empty or has a `..` component.
    static func components(_ name: String) -> [String]? {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.unicodeScalars.contains(where: { $0.value == 0 }) else {
            return nil
        }
        var parts: [String] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { return nil }
            parts.append(String(part))
        }
        return parts.isEmpty ? nil : parts
    }

    /// Whether a symlink at `entry` (components) pointing to `target` stays inside the extraction root.
    static func symlinkStaysInside(entry: [String], target: String) -> Bool {
        guard !target.isEmpty, !target.hasPrefix("/") else { return false }
        var stack = Array(entry.dropLast())
        for part in target.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." {
                if stack.isEmpty { return false }
                stack.removeLast()
            } else {
                stack.append(String(part))
            }
        }
        return true
    }
}
