internal import CArchive
internal import Glibc

/// Creates extracted entries beneath the staging directory through directory descriptors, never through paths
/// that could leave it.
///
/// Every entry is created relative to the descriptor of its parent directory, which was reached from the staging
/// root one component at a time with `O_NOFOLLOW | O_DIRECTORY`: no symbolic link is followed on the way (writing
/// through a link is refused, even one that points inside), and member names never hold `..` (``ArchivePath``),
/// so a parent descriptor is always a directory beneath the root. Descriptors stay valid when paths change (the
/// archive cannot rename), so they are kept by relative path while extracting: one `openat` per directory instead
/// of a walk of the whole path per entry (what `archive_write_disk` with `ARCHIVE_EXTRACT_SECURE_SYMLINKS` does).
///
/// Semantics follow `archive_write_disk` with `ARCHIVE_EXTRACT_TIME` (what `SafeArchive` used before): missing
/// parent directories are created (0777 minus the umask); an existing non-directory is replaced, an existing
/// empty directory too; permissions are the archive's minus the umask (set-id and sticky bits never set);
/// directories are created writable by their owner and get their final mode and times at ``finish()``, after
/// their contents; files, symlinks get their times as they are written.
final class StagingWriter {
    private let rootFD: Int32
    private let archivePath: String
    /// Open directory descriptors by path relative to the root.
    private var directories: [String: Int32] = [:]
    /// Directories whose mode and times are set at the end (after their contents were written).
    private var fixups: [(path: [String], mode: mode_t?, times: (timespec, timespec))] = []
    /// Cached descriptors above this many are all closed before the next lookup (deep or wide archives).
    private static let maxOpenDirectories = 128

    static let timeNow = (1 << 30) - 1
    static let timeOmit = (1 << 30) - 2

    init(staging: String, archivePath: String) throws(DeliveryError) {
        rootFD = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard rootFD >= 0 else { throw .posix("cannot open", path: staging, errno: errno) }
        self.archivePath = archivePath
    }

    deinit {
        for fd in directories.values { close(fd) }
        close(rootFD)
    }

    /// The descriptor of the directory `parts` below the root (the root itself when empty), created when missing.
    /// Only the directories that entries are written into are kept open; the walk to a new one starts at its
    /// deepest kept ancestor.
    /// - Throws: `unsafeArchiveEntry` when a component is a symbolic link; `fileSystem` otherwise.
    func directory(_ parts: ArraySlice<String>, for name: String, create: Bool = true) throws(DeliveryError) -> Int32 {
        if parts.isEmpty { return rootFD }
        let key = parts.joined(separator: "/")
        if let fd = directories[key] { return fd }
        if directories.count >= Self.maxOpenDirectories {
            for fd in directories.values { close(fd) }
            directories.removeAll(keepingCapacity: true)
        }
        var start = parts.startIndex
        var fd = rootFD
        var ancestor = key[...]
        for index in stride(from: parts.endIndex - 1, to: parts.startIndex, by: -1) {
            ancestor = ancestor[..<(ancestor.lastIndex(of: "/") ?? ancestor.startIndex)]
            if let cached = directories[String(ancestor)] {
                fd = cached
                start = index
                break
            }
        }
        let base = fd
        for index in start..<parts.endIndex {
            let part = parts[index]
            var child = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if child < 0 && errno == ENOENT && create {
                if mkdirat(fd, part, 0o777) != 0 && errno != EEXIST {
                    let code = errno
                    if fd != base { close(fd) }
                    throw failure("cannot create directory '\(parts[...index].joined(separator: "/"))' for", name, code)
                }
                child = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            }
            if child < 0 {
                let code = errno
                var st = stat()
                let isLink = fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT == S_IFLNK
                if fd != base { close(fd) }
                let path = parts[...index].joined(separator: "/")
                if isLink { throw unsafe(name, "'\(path)' is a symbolic link: writing through links is not allowed") }
                throw failure("cannot open directory '\(path)' for", name, code)
            }
            if fd != base { close(fd) }
            fd = child
        }
        directories[key] = fd
        return fd
    }

    /// Creates the directory `last` in `parent` (or keeps an existing one) and records its mode and times.
    func makeDirectory(
        _ parts: [String], in parent: Int32, perm: mode_t, times: (timespec, timespec), for name: String
    ) throws(DeliveryError) {
        let last = parts[parts.count - 1]
        var created = mkdirat(parent, last, (perm & 0o777) | 0o700) == 0
        if !created {
            guard errno == EEXIST else { throw failure("cannot create directory", name, errno) }
            var st = stat()
            if fstatat(parent, last, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_mode & S_IFMT != S_IFDIR {
                try remove(last, in: parent, parts: parts, for: name)
                guard mkdirat(parent, last, (perm & 0o777) | 0o700) == 0 else {
                    throw failure("cannot create directory", name, errno)
                }
                created = true
            }
        }
        let restrictive = perm & 0o700 != 0o700
        fixups.append((parts, created && restrictive ? perm & 0o777 : nil, times))
    }

    /// Creates the regular file `last` in `parent` for writing (replacing what is there) and returns its descriptor.
    func createFile(
        _ parts: [String], in parent: Int32, perm: mode_t, for name: String
    ) throws(DeliveryError)
        -> Int32
    {
        let last = parts[parts.count - 1]
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        var fd = openat(parent, last, flags, perm & 0o777)
        if fd < 0 && errno == EEXIST {
            try remove(last, in: parent, parts: parts, for: name)
            fd = openat(parent, last, flags, perm & 0o777)
        }
        guard fd >= 0 else { throw failure("cannot create", name, errno) }
        return fd
    }

    /// Completes a file written through `fd`: extends it to `size` (a sparse tail), sets its times, closes it.
    func finishFile(
        _ fd: Int32, end: Int64, size: Int64, times: (timespec, timespec), for name: String
    )
        throws(DeliveryError)
    {
        defer { close(fd) }
        if size > end && ftruncate(fd, off_t(size)) != 0 { throw failure("cannot extend", name, errno) }
        if times.1.tv_nsec != Self.timeOmit || times.0.tv_nsec != Self.timeOmit {
            var pair = [times.0, times.1]
            if futimens(fd, &pair) != 0 { throw failure("cannot set the times of", name, errno) }
        }
    }

    /// Creates the symbolic link `last` in `parent` pointing at `target` (replacing what is there).
    func makeSymlink(
        _ parts: [String], in parent: Int32, target: String, times: (timespec, timespec), for name: String
    ) throws(DeliveryError) {
        let last = parts[parts.count - 1]
        if symlinkat(target, parent, last) != 0 {
            guard errno == EEXIST else { throw failure("cannot create symlink", name, errno) }
            try remove(last, in: parent, parts: parts, for: name)
            guard symlinkat(target, parent, last) == 0 else { throw failure("cannot create symlink", name, errno) }
        }
        if times.1.tv_nsec != Self.timeOmit || times.0.tv_nsec != Self.timeOmit {
            var pair = [times.0, times.1]
            _ = utimensat(parent, last, &pair, AT_SYMLINK_NOFOLLOW)
        }
    }

    /// Creates `last` in `parent` as a hard link to `target` (a path below the root whose directories the caller
    /// checked hold no symbolic link; `linkat` does not follow the last component).
    func makeHardLink(_ parts: [String], in parent: Int32, target: String, for name: String) throws(DeliveryError) {
        let last = parts[parts.count - 1]
        if linkat(rootFD, target, parent, last, 0) != 0 {
            guard errno == EEXIST else { throw failure("cannot create hard link", name, errno) }
            try remove(last, in: parent, parts: parts, for: name)
            guard linkat(rootFD, target, parent, last, 0) == 0 else {
                throw failure("cannot create hard link", name, errno)
            }
        }
    }

    /// Sets the recorded directories' modes and times, now that their contents are written.
    func finish() throws(DeliveryError) {
        for fixup in fixups.reversed() {
            let name = fixup.path.joined(separator: "/")
            // A directory that a later entry replaced is gone: nothing to fix.
            guard let fd = try? directory(fixup.path[...], for: name, create: false) else { continue }
            if fixup.times.1.tv_nsec != Self.timeOmit || fixup.times.0.tv_nsec != Self.timeOmit {
                var pair = [fixup.times.0, fixup.times.1]
                if futimens(fd, &pair) != 0 { throw failure("cannot set the times of", name, errno) }
            }
            if let mode = fixup.mode, fchmod(fd, mode & ~Self.umask) != 0 {
                throw failure("cannot set the mode of", name, errno)
            }
        }
        fixups.removeAll()
    }

    /// Removes `last` from `parent` so that an entry can take its name: a non-directory, or an empty directory.
    private func remove(_ last: String, in parent: Int32, parts: [String], for name: String) throws(DeliveryError) {
        if unlinkat(parent, last, 0) == 0 { return }
        guard errno == EISDIR else { throw failure("cannot replace", name, errno) }
        guard unlinkat(parent, last, AT_REMOVEDIR) == 0 else { throw failure("cannot replace directory", name, errno) }
        let key = parts.joined(separator: "/")
        for (path, fd) in directories where path == key || path.hasPrefix(key + "/") {
            close(fd)
            directories[path] = nil
        }
    }

    /// The process umask, read without changing it (`/proc/self/status`), 022 when unreadable.
    static let umask: mode_t = {
        let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return 0o022 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(fd, &buffer, buffer.count)
        guard n > 0 else { return 0o022 }
        let text = String(decoding: buffer[..<n], as: UTF8.self)
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Umask:") }),
            let value = mode_t(line.dropFirst(6).trimmingPrefix(while: { $0 == " " || $0 == "\t" }), radix: 8)
        else { return 0o022 }
        return value
    }()

    private func failure(_ what: String, _ name: String, _ code: Int32) -> DeliveryError {
        DeliveryError(
            .fileSystem, "\(what) '\(name)' of '\(archivePath)': \(String(cString: strerror(code)))")
    }

    private func unsafe(_ name: String, _ reason: String) -> DeliveryError {
        DeliveryError(
            .unsafeArchiveEntry, "refusing entry '\(name)' of '\(archivePath)': \(reason)",
            hint: "the archive is damaged or hostile; nothing was extracted")
    }
}
