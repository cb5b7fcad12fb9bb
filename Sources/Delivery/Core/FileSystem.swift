// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import Dispatch
internal import FoundationEssentials
internal import Glibc
internal import Synchronization

/// Small POSIX helpers with ``DeliveryError`` errors; the module's only direct file-system layer.
enum FileSystem {
    /// `lstat`, or `nil` if the path does not exist.
    static func status(_ path: String) throws(DeliveryError) -> stat? {
        var st = stat()
        if lstat(path, &st) == 0 { return st }
        if errno == ENOENT || errno == ENOTDIR { return nil }
        throw .posix("cannot stat", path: path, errno: errno)
    }

    static func exists(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The number of hard links to `path` (not following a symbolic link), nil when it cannot be read.
    static func linkCount(_ path: String) -> Int? {
        var st = stat()
        return lstat(path, &st) == 0 ? Int(st.st_nlink) : nil
    }

    static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    static func remove(_ path: String) {
        unlink(path)
    }

    /// Removes a file or a whole tree, ignoring errors (clean-up paths only).
    static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    static func makeDirectory(_ path: String, mode: mode_t = 0o755) throws(DeliveryError) {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            throw .posix("cannot create directory", path: path, errno: errno)
        }
    }

    static func makeDirectories(_ path: String) throws(DeliveryError) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw DeliveryError(.fileSystem, "cannot create directory '\(path)': \(error)")
        }
    }

    static func rename(_ from: String, _ to: String) throws(DeliveryError) {
        if Glibc.rename(from, to) != 0 { throw .posix("cannot rename '\(from)' to", path: to, errno: errno) }
    }

    static func parent(_ path: String) -> String {
        let p = PathString.deletingLastComponent(path)
        return p.isEmpty ? "." : p
    }

    static func baseName(_ path: String) -> String { PathString.lastComponent(path) }

    static func join(_ a: String, _ b: String) -> String { a.hasSuffix("/") ? a + b : a + "/" + b }

    /// A unique, hidden sibling name for temporary output next to `path`.
    static func temporarySibling(of path: String, tag: String) -> String {
        join(parent(path), ".\(baseName(path)).\(tag)-\(UUID().uuidString.prefix(8))")
    }
}
