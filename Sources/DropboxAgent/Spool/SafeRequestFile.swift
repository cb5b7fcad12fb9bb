import FoundationEssentials
import Glibc
import RestoreSteps

/// The identity and shape of a spool entry at one moment, from `fstat` of the opened file.
struct FileIdentity: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var mtime: timespec
    var ctime: timespec
    var owner: uid_t
    var links: UInt64

    static func == (a: FileIdentity, b: FileIdentity) -> Bool {
        a.device == b.device && a.inode == b.inode && a.size == b.size && a.owner == b.owner && a.links == b.links
            && a.mtime.tv_sec == b.mtime.tv_sec && a.mtime.tv_nsec == b.mtime.tv_nsec
            && a.ctime.tv_sec == b.ctime.tv_sec && a.ctime.tv_nsec == b.ctime.tv_nsec
    }
}

/// Why a spool entry is refused before its content is even read.
struct UnsafeEntry: Error, Equatable, Sendable {
    /// `symlink`, `notRegularFile`, `hardLink`, `ownerNotAllowed`, `tooLarge`, `unreadable`
    var code: RestoreError.Code
    var message: String
}

/// Reads a request file the way Postfix's `safe_open` does: never follows a link, never blocks on a FIFO,
/// and checks what was actually opened.
enum SafeRequestFile {
    /// The result of a read: the bytes and the identity they were read under.
    struct Contents: Sendable {
        var bytes: [UInt8]
        var identity: FileIdentity
    }

    /// Opens `name` in the directory `directoryFD` with `O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC`, then `fstat`:
    /// a regular file with one link, owned by an allowed user, at most `maxBytes`.
    ///
    /// - Returns: nil when the entry no longer exists (claimed or removed by someone else).
    static func read(
        directoryFD: Int32, name: String, maxBytes: Int, allowedOwners: Set<uid_t>?
    ) throws(UnsafeEntry) -> Contents? {
        let fd = openat(directoryFD, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
        if fd < 0 {
            let e = errno
            switch e {
            case ENOENT: return nil
            case ELOOP, EMLINK:
                throw UnsafeEntry(
                    code: .symlink,
                    message: "the request is a symbolic link; links are never followed — drop the file itself")
            case ENXIO:
                throw UnsafeEntry(code: .notRegularFile, message: "the request is a socket or FIFO, not a regular file")
            case EACCES, EPERM:
                throw UnsafeEntry(
                    code: .unreadable,
                    message:
                        "the agent may not read the request file (permission denied); make it readable by the agent's user"
                )
            default:
                throw UnsafeEntry(
                    code: .unreadable, message: "cannot open the request: \(String(cString: strerror(e)))")
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw UnsafeEntry(code: .unreadable, message: "fstat failed: \(String(cString: strerror(errno)))")
        }
        let identity = FileIdentity(
            device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size), mtime: st.st_mtim,
            ctime: st.st_ctim,
            owner: st.st_uid, links: UInt64(st.st_nlink))
        let type = st.st_mode & S_IFMT
        guard type == S_IFREG else {
            let what =
                type == S_IFDIR
                ? "a directory"
                : type == S_IFIFO
                    ? "a FIFO"
                    : type == S_IFCHR || type == S_IFBLK
                        ? "a device node" : type == S_IFSOCK ? "a socket" : "not a regular file"
            throw UnsafeEntry(code: .notRegularFile, message: "the request is \(what); only regular files are accepted")
        }
        guard st.st_nlink == 1 else {
            throw UnsafeEntry(
                code: .hardLink,
                message: "the request has \(st.st_nlink) hard links; a request must be a file of its own (link count 1)"
            )
        }
        if let allowedOwners, !allowedOwners.contains(st.st_uid) {
            throw UnsafeEntry(
                code: .ownerNotAllowed,
                message:
                    "the request is owned by \(UserNames.describe(st.st_uid)), who is not allowed to drop requests (spool.allowedOwners)"
            )
        }
        guard st.st_size <= maxBytes else {
            throw UnsafeEntry(
                code: .tooLarge, message: "the request is \(st.st_size) bytes; the limit is \(maxBytes) bytes")
        }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var total = 0
        while total <= maxBytes {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + total, maxBytes + 1 - total) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN { break }
                throw UnsafeEntry(code: .unreadable, message: "read failed: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
        }
        guard total <= maxBytes else {
            throw UnsafeEntry(
                code: .tooLarge, message: "the request grew past the limit of \(maxBytes) bytes while being read")
        }
        bytes.removeSubrange(total...)
        return Contents(bytes: bytes, identity: identity)
    }

    /// Resolves `spool.allowedOwners` to uids: nil means anyone (`"*"`); default the agent's user and root.
    static func allowedOwners(_ configured: [String]?) throws -> Set<uid_t>? {
        guard let configured else { return [getuid(), 0] }
        if configured.contains("*") { return nil }
        var result = Set<uid_t>()
        for entry in configured {
            if let uid = uid_t(entry) {
                result.insert(uid)
                continue
            }
            guard let pw = getpwnam(entry) else {
                throw ConfigurationError(path: "$.spool.allowedOwners", message: "no such user \"\(entry)\"")
            }
            result.insert(pw.pointee.pw_uid)
        }
        return result
    }
}
