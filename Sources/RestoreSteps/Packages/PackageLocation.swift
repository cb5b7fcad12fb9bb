internal import FoundationEssentials
internal import Glibc

/// Checks on where a request says its download package is (`source.package`).
public enum PackageLocation {
    /// Why `location` is not acceptable as written (nil if it is): an absolute path without `.`/`..`
    /// components, or an `http://`/`https://` URL, at most 4096 bytes, no control characters.
    public static func problem(_ location: String) -> String? {
        guard !location.isEmpty, location.utf8.count <= 4096 else { return "must be 1–4096 bytes" }
        guard !location.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return "must not contain control characters"
        }
        if RestoreSource.isURL(location) {
            guard let url = URL(string: location), let host = url.host, !host.isEmpty else {
                return "\"\(location.prefix(80))\" is not a valid http(s) URL"
            }
            guard url.user == nil, url.password == nil else {
                return "must not carry credentials in the URL (configure a token file instead)"
            }
            return nil
        }
        guard location.hasPrefix("/") else {
            return "must be an absolute directory path or an http(s) URL"
        }
        let components = location.split(separator: "/", omittingEmptySubsequences: true)
        guard !components.contains(where: { $0 == ".." || $0 == "." }) else {
            return "must not contain '.' or '..' components"
        }
        return nil
    }

    /// The real path of a local package directory, confined to `roots`: the path, after resolving every
    /// symbolic link, must be one of the roots (resolved the same way) or lie beneath one.
    ///
    /// - Throws: ``RestoreError`` `packageNotAllowed` (no roots configured, or outside them) or `packageNotFound`.
    public static func confine(_ location: String, roots: [String]) throws(RestoreError) -> String {
        if let problem = problem(location) {
            throw RestoreError(.packageNotAllowed, "source.package \(problem)")
        }
        guard !roots.isEmpty else {
            throw RestoreError(
                .packageNotAllowed, "source.package names \(location), but no package roots are configured",
                hint: "An operator must list the directories requests may name in sources.packageRoots.")
        }
        guard let real = realPath(location) else {
            throw RestoreError(
                .packageNotFound, "the download package \(location) does not exist or cannot be read",
                hint: "Check the path; the agent's user must be able to read the package.")
        }
        let resolvedRoots = roots.compactMap(realPath)
        guard resolvedRoots.contains(where: { isBeneath(real, $0) }) else {
            let shown = real == location ? location : "\(location) (which resolves to \(real))"
            throw RestoreError(
                .packageNotAllowed,
                "the download package \(shown) is outside the configured package roots (\(roots.joined(separator: ", ")))",
                hint: "Put the package under one of sources.packageRoots, or ask an operator to add its directory.")
        }
        guard FileSystemSteps.isDirectory(real) else {
            throw RestoreError(
                .packageNotFound, "the download package \(location) is not a directory",
                hint: "Name the directory holding the package's tar files (or its untarred tree).")
        }
        return real
    }

    /// Checks a package URL against the allowed prefixes (`sources.packageURLs`); returns it with one trailing `/`.
    ///
    /// - Throws: ``RestoreError`` `packageNotAllowed`.
    public static func confine(url location: String, prefixes: [String]) throws(RestoreError) -> String {
        if let problem = problem(location) {
            throw RestoreError(.packageNotAllowed, "source.package \(problem)")
        }
        let directory = location.hasSuffix("/") ? location : location + "/"
        guard !directory.contains("/../"), !directory.contains("/./") else {
            throw RestoreError(.packageNotAllowed, "source.package must not contain '.' or '..' components")
        }
        guard prefixes.contains(where: { directory.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") || directory == $0 })
        else {
            throw RestoreError(
                .packageNotAllowed,
                prefixes.isEmpty
                    ? "source.package is a URL (\(location)), but no package URLs are allowed (sources.packageURLs is empty)"
                    : "the package URL \(location) is not under an allowed prefix (\(prefixes.joined(separator: ", ")))",
                hint: "An operator must list the URL prefixes requests may name in sources.packageURLs.")
        }
        return directory
    }

    /// `realpath(3)`, or nil when the path does not exist.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Whether `path` is `root` or lies beneath it (both already resolved).
    static func isBeneath(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }
}
