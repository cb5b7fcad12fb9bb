internal import Glibc

/// Reading a directory by path: its names (`readdir(3)`, no per-entry `stat`) and its identity.
enum DirectoryListing {
    /// The device and inode of a directory; a different identity at the same path means the directory was replaced
    /// or something was mounted over it (or unmounted from it).
    struct Identity: Equatable {
        var device: UInt64
        var inode: UInt64
    }

    /// Every entry name except `.` and `..`. Names that are not valid UTF-8 are skipped (they could not be
    /// opened through a Swift `String` anyway).
    ///
    /// - Throws: ``WatcherError`` classified by the `errno` of `opendir` or `readdir`.
    static func names(at path: String) throws(WatcherError) -> [String] {
        guard let directory = opendir(path) else {
            throw WatcherError.system("opendir", errno: errno, path: path)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while true {
            errno = 0
            guard let entry = readdir(directory) else {
                let value = errno
                if value != 0 { throw WatcherError.system("readdir", errno: value, path: path) }
                return names
            }
            let name: String? = withUnsafeBytes(of: &entry.pointee.d_name) { raw in
                let bytes = raw.prefix(while: { $0 != 0 })
                return FileName.decode(bytes)
            }
            guard let name, name != ".", name != ".." else { continue }
            names.append(name)
        }
    }

    /// The identity of the directory at `path` (symbolic links not followed), or the errno that prevented it;
    /// `ENOTDIR` when `path` is not a directory.
    static func identity(of path: String) -> Result<Identity, WatcherError> {
        var status = stat()
        guard lstat(path, &status) == 0 else {
            return .failure(WatcherError.system("lstat", errno: errno, path: path))
        }
        guard (status.st_mode & S_IFMT) == S_IFDIR else {
            return .failure(WatcherError.system("lstat", errno: ENOTDIR, path: path))
        }
        return .success(Identity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino)))
    }

    /// Whether `path` is the root of a mounted filesystem (its device differs from its parent's).
    static func isMountPoint(_ path: String) -> Bool {
        guard case .success(let own) = identity(of: path),
            case .success(let parent) = identity(of: path + "/..")
        else { return false }
        return own.device != parent.device || own.inode == parent.inode
    }
}
