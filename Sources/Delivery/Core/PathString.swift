/// Path-string arithmetic on plain `String` paths (what `NSString`'s path methods did, without full Foundation).
///
/// Only slashes are interpreted: no tilde expansion, no `.`/`..` resolution, no file-system access. A path made of
/// slashes only is the root `/`; trailing slashes of a path are ignored.
public enum PathString {
    /// The last component: `"/a/b/"` → `"b"`, `"/"` → `"/"`, `"a"` → `"a"`, `""` → `""`.
    public static func lastComponent(_ path: String) -> String {
        let trimmed = trimmingTrailingSlashes(path)
        if trimmed == "/" || trimmed.isEmpty { return trimmed }
        guard let slash = trimmed.utf8.lastIndex(of: UInt8(ascii: "/")) else { return trimmed }
        return String(trimmed[trimmed.utf8.index(after: slash)...])
    }

    /// The path without its last component: `"/a/b"` → `"/a"`, `"/a"` → `"/"`, `"a"` → `""`, `"/"` → `"/"`.
    public static func deletingLastComponent(_ path: String) -> String {
        let trimmed = trimmingTrailingSlashes(path)
        if trimmed == "/" || trimmed.isEmpty { return trimmed }
        guard let slash = trimmed.utf8.lastIndex(of: UInt8(ascii: "/")) else { return "" }
        let parent = trimmingTrailingSlashes(String(trimmed[..<slash]))
        return parent.isEmpty ? "/" : parent
    }

    /// `path` + `/` + `component`, with exactly one slash between them: `("/a/", "b")` → `"/a/b"`,
    /// `("", "b")` → `"b"`, `("/", "b")` → `"/b"`. Leading slashes of `component` are dropped.
    public static func appending(_ path: String, _ component: String) -> String {
        var tail = Substring(component)
        while tail.first == "/" { tail = tail.dropFirst() }
        if path.isEmpty { return String(tail) }
        if tail.isEmpty { return path }
        let head = trimmingTrailingSlashes(path)
        return head == "/" ? "/" + tail : head + "/" + tail
    }

    /// The last component's extension without the dot (`"a/b.tar.gz"` → `"gz"`), `""` when there is none (a
    /// leading dot, as in `.profile`, does not start an extension).
    public static func pathExtension(_ path: String) -> String {
        let last = lastComponent(path)
        guard let dot = last.utf8.lastIndex(of: UInt8(ascii: ".")), dot != last.utf8.startIndex else { return "" }
        return String(last[last.utf8.index(after: dot)...])
    }

    /// The path without the last component's extension: `"/a/b.tar.gz"` → `"/a/b.tar"`, `"/a/.profile"` unchanged.
    /// Doubled slashes inside the path are kept (`NSString` collapsed them).
    public static func deletingExtension(_ path: String) -> String {
        let trimmed = trimmingTrailingSlashes(path)
        let last = lastComponent(trimmed)
        guard let dot = last.utf8.lastIndex(of: UInt8(ascii: ".")), dot != last.utf8.startIndex else { return trimmed }
        let removed = last.utf8.distance(from: dot, to: last.utf8.endIndex)
        return String(decoding: trimmed.utf8.dropLast(removed), as: UTF8.self)
    }

    private static func trimmingTrailingSlashes(_ path: String) -> String {
        var end = path.utf8.endIndex
        while end > path.utf8.startIndex, path.utf8[path.utf8.index(before: end)] == UInt8(ascii: "/") {
            end = path.utf8.index(before: end)
        }
        if end == path.utf8.startIndex { return path.isEmpty ? "" : "/" }
        return String(path[..<end])
    }
}
