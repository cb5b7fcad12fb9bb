internal import CFileIO
public import FoundationEssentials
public import Glibc

/// Durable, never-torn file replacement: temp file in the same directory, its data on disk, `rename`, `fsync` of
/// the directory (fsync(2): syncing the file does not make its directory entry durable).
///
/// ## One journal commit per replacement on ext4 and XFS
///
/// The portable sequence is `fsync(temp)`, `rename`, `fsync(directory)`: two journal commits (two cache flushes)
/// per status write, which bounded intake on a real disk (bench/pickup.py on ext4). On ext4 and XFS, recognised by
/// `fstatfs`, the temp file's *data* is instead written and waited for with
/// `sync_file_range(WAIT_BEFORE | WRITE | WAIT_AFTER)` (no journal commit), and the single `fsync` of the
/// directory after the rename commits the temp file's inode (size, extents) together with the rename. Why that
/// survives a power cut:
/// - both file systems keep one journal (log) that commits transactions strictly in order, and an `fsync` of the
///   directory forces the log up to the transaction holding the rename: every earlier transaction is committed
///   with it, including the one that allocated the temp file's blocks and set its size (done during the
///   write-back we waited for, so before the rename);
/// - the data blocks were written before that commit (we waited for them), and the commit itself is written with a
///   cache flush (REQ_PREFLUSH/FUA), which also makes those earlier data writes durable;
/// - so after the directory `fsync` returns, the name points at an inode whose size and blocks are committed and
///   whose blocks hold the new bytes: a `queued` status file reads back whole after a power cut. Before it
///   returns, the rename may be lost, and the reader finds the previous version (never a torn file).
/// On any other file system (btrfs, NFS, …) the portable sequence is used; on tmpfs `fsync` costs nothing.
public enum AtomicFile {
    /// Replaces `path` with `data` atomically: readers see the old content or the new, never a mix or nothing.
    ///
    /// - Parameter group: when given, the directory `fsync` that makes the rename durable is left to the group
    ///   (``DirectorySyncGroup/commit()``), shared with the other replacements of the batch; the caller must not
    ///   act on the new content as durable before that commit.
    public static func write(
        _ data: Data, to path: String, mode: mode_t = 0o644, group: DirectorySyncGroup? = nil
    ) throws {
        try write([Replacement(data, at: path, mode: mode)], group: group)
    }

    /// ``write(_:to:mode:)`` whose visible step, the `rename`, happens only if `commit` agrees: `commit` is called
    /// with the rename once the temporary file is complete and synced, and may run it under a lock after a check
    /// (a lease: the slow part, writing and syncing, stays outside the lock).
    ///
    /// - Parameter commit: runs its argument (the rename) and returns true, or returns false without running it.
    /// - Returns: whether the file was replaced; when not, the temporary is removed and `path` is untouched.
    @discardableResult
    public static func write(
        _ data: Data, to path: String, mode: mode_t = 0o644, commit: (_ rename: () throws -> Void) throws -> Bool
    ) throws -> Bool {
        let pending = try PendingFile(data, for: path, mode: mode)
        try pending.waitUntilDurable()
        var renamed = false
        let agreed = try commit {
            try pending.rename()
            renamed = true
        }
        guard agreed, renamed else { return false }  // the pending file removes its temporary
        try syncDirectory(of: path)
        return true
    }

    /// Like ``write(_:to:mode:)``, but checks `precondition` once the new content is durable, immediately before the
    /// rename: the check-then-replace window is a few system calls, not the fsync before them (a fencing check
    /// done before a slow fsync can be stale by the time the file is replaced).
    ///
    /// - Returns: false (and nothing replaced) when `precondition` returned false.
    ///
    /// - Parameter group: as in ``write(_:to:mode:group:)``: the directory `fsync` is left to the group's commit.
    @discardableResult
    public static func write(
        _ data: Data, to path: String, mode: mode_t = 0o644, group: DirectorySyncGroup? = nil,
        if precondition: () -> Bool
    ) throws -> Bool {
        try write([Replacement(data, at: path, mode: mode)], group: group, if: precondition)
    }

    /// Creates `path` with `data` only if it does not exist yet (`link(2)` of a complete temp file, so the
    /// file never appears half-written). Returns false when it already existed.
    ///
    /// Exclusive across processes and hosts on local filesystems, NFS and SFTP (sshfs's hard links run `link(2)`
    /// on the server): the guarantee leases and the idempotency index rest on, no lock needed.
    @discardableResult
    public static func create(
        _ data: Data, at path: String, mode: mode_t = 0o644, group: DirectorySyncGroup? = nil
    ) throws -> Bool {
        let pending = try PendingFile(data, for: path, mode: mode)
        try pending.waitUntilDurable()
        guard try pending.link() else { return false }
        if let group { group.add(directoryOf: path) } else { try syncDirectory(of: path) }
        return true
    }

    /// `fsync` of the directory containing `path`.
    public static func syncDirectory(of path: String) throws {
        try syncDirectory(PathString.deletingLastComponent(path))
    }

    /// `fsync` of a directory, making renames and creations in it durable.
    public static func syncDirectory(_ directory: String) throws {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        // A dropper may write into a spool it cannot read (mode 3730): the rename is atomic all the same, only
        // its durability is the agent's to ensure, and the agent syncs the spool itself when it claims.
        if fd < 0 && (errno == EACCES || errno == EPERM) { return }
        guard fd >= 0 else { throw DeliveryError.posix("cannot open", path: directory, errno: errno) }
        defer { close(fd) }
        // EINVAL: the filesystem does not support syncing directories (some FUSE mounts); nothing more to do.
        if fsync(fd) != 0 && errno != EINVAL {
            throw DeliveryError.posix("cannot fsync", path: directory, errno: errno)
        }
    }

}

extension AtomicFile {
    /// What ``write(_:group:if:)`` replaces: `data` at `path`, with the file mode `mode`.
    public struct Replacement: Sendable {
        public var data: Data
        public var path: String
        public var mode: mode_t

        /// `data` to be placed at `path` with the file mode `mode`.
        public init(_ data: Data, at path: String, mode: mode_t = 0o644) {
            self.data = data
            self.path = path
            self.mode = mode
        }
    }

    /// Replaces several files, each atomically as ``write(_:to:mode:group:if:)`` does, in the order given, but
    /// waits for the disk once for all of them: every temporary file is written and its write-back started before
    /// the first wait, so the disk writes them together (a status write is a record and a status file: one disk
    /// wait instead of two on a request's pickup path). Each file is durable before any rename, as with the
    /// single-file write, so the power-cut argument of ``AtomicFile`` holds for each.
    ///
    /// - Parameter precondition: asked right before each rename; when it says no, that file and the ones after it
    ///   are not replaced (their temporaries are removed), the ones before it stay replaced.
    /// - Returns: false when `precondition` stopped a replacement.
    @discardableResult
    public static func write(
        _ replacements: [Replacement], group: DirectorySyncGroup? = nil, if precondition: () -> Bool = { true }
    ) throws -> Bool {
        let pending = try replacements.map { try PendingFile($0.data, for: $0.path, mode: $0.mode) }
        for file in pending { try file.waitUntilDurable() }
        for file in pending {
            guard precondition() else { return false }
            try file.rename()
            if let group { group.add(directoryOf: file.path) } else { try syncDirectory(of: file.path) }
        }
        return true
    }

    /// Like ``create(_:at:mode:group:)`` for `first`, then, only if it was created, ``write(_:group:if:)`` of
    /// `then`: both temporaries are written back together (one disk wait), as in ``write(_:group:if:)``.
    ///
    /// - Returns: false when `first` already existed (nothing written).
    @discardableResult
    public static func create(
        _ first: Replacement, then: Replacement, group: DirectorySyncGroup? = nil
    ) throws -> Bool {
        let created = try PendingFile(first.data, for: first.path, mode: first.mode)
        let following = try PendingFile(then.data, for: then.path, mode: then.mode)
        try created.waitUntilDurable()
        try following.waitUntilDurable()
        guard try created.link() else { return false }
        if let group { group.add(directoryOf: first.path) } else { try syncDirectory(of: first.path) }
        try following.rename()
        if let group { group.add(directoryOf: then.path) } else { try syncDirectory(of: then.path) }
        return true
    }
}

/// A temporary file beside `path` holding the new content, its write-back started when it was written; removed on
/// deinit unless it was renamed onto `path` or handed over.
///
/// The write-back starts with `sync_file_range(SYNC_FILE_RANGE_WRITE)` (returns at once) on ext4 and XFS, so that
/// several pending files are written by the disk together and ``waitUntilDurable()`` then waits for all of them at
/// the cost of one. Elsewhere ``waitUntilDurable()`` is an `fsync`.
private final class PendingFile {
    let path: String
    private(set) var temporary: String?
    private var fd: Int32
    private let journalled: Bool

    init(_ data: Data, for path: String, mode: mode_t) throws {
        self.path = path
        let directory = PathString.deletingLastComponent(path)
        let name = PathString.lastComponent(path)
        // Dot-prefixed so spool watchers (ours and others') ignore it.
        let temp =
            (directory.isEmpty ? "" : directory + "/") + ".\(name).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else { throw DeliveryError.posix("cannot create", path: temp, errno: errno) }
        var ok = false
        defer {
            if !ok {
                close(fd)
                unlink(temp)
            }
        }
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DeliveryError.posix("cannot write", path: temp, errno: errno)
                }
                offset += n
            }
        }
        fchmod(fd, mode)  // the umask must not make status files unreadable to droppers
        let journalled = JournalledFileSystem.hasOrderedJournal(fd)
        if journalled { _ = cfileio_sync_file_range(fd, 0, 0, CFILEIO_SYNC_FILE_RANGE_WRITE) }
        ok = true
        self.fd = fd
        self.temporary = temp
        self.journalled = journalled
    }

    /// Waits until the temporary's data is on disk (see ``AtomicFile`` for why that suffices on ext4 and XFS).
    func waitUntilDurable() throws {
        guard fd >= 0, let temp = temporary else { return }
        if journalled {
            let flags =
                CFILEIO_SYNC_FILE_RANGE_WAIT_BEFORE | CFILEIO_SYNC_FILE_RANGE_WRITE
                | CFILEIO_SYNC_FILE_RANGE_WAIT_AFTER
            guard cfileio_sync_file_range(fd, 0, 0, flags) == 0 else {
                throw DeliveryError.posix("cannot write back", path: temp, errno: errno)
            }
        } else {
            guard fsync(fd) == 0 else { throw DeliveryError.posix("cannot fsync", path: temp, errno: errno) }
        }
        close(fd)
        fd = -1
    }

    /// Renames the temporary onto ``path``.
    func rename() throws {
        guard let temp = temporary else { return }
        guard Glibc.rename(temp, path) == 0 else {
            throw DeliveryError.posix("cannot rename a temporary file onto", path: path, errno: errno)
        }
        temporary = nil
    }

    /// Links ``path`` to the temporary (exclusive creation, see ``AtomicFile/create(_:at:mode:group:)``); false when
    /// `path` existed.
    func link() throws -> Bool {
        guard let temp = temporary else { return false }
        temporary = nil
        defer { unlink(temp) }
        if Glibc.link(temp, path) != 0 {
            let e = errno
            // NFS: a retransmitted LINK can report EEXIST although the first one created the link: then the
            // temporary file has two links (the classic NFS-safe exclusive-create test). `lstat`, not
            // FileManager: FoundationEssentials reports the link count as `UInt`, not `Int`.
            if e == EEXIST, FileSystem.linkCount(temp) == 2 { return true }
            if e == EEXIST { return false }
            throw DeliveryError.posix("cannot link a temporary file to", path: path, errno: e)
        }
        return true
    }

    deinit {
        if fd >= 0 { close(fd) }
        if let temporary { unlink(temporary) }
    }
}

/// Group commit of atomic file replacements: the directory `fsync`s of a batch of ``AtomicFile`` writes, done once
/// per directory when the batch is committed instead of once per file.
///
/// On ext4 and XFS each directory `fsync` is a journal commit with a cache flush; a batch of N status renames in
/// one directory thus costs one commit instead of N. Why a batch is as durable as N single writes once
/// ``commit()`` has returned: each file's data was written back and waited for before its rename (see
/// ``AtomicFile``), and the journal commits transactions in order, so the one `fsync` that forces the transaction
/// holding the *last* rename commits every earlier rename (and inode) of the batch with it. Before ``commit()``
/// returns, a power cut leaves each name at its previous version (never a torn file), so the caller acts on the
/// new contents as durable only after the commit.
///
/// Not thread-safe: one batch belongs to one thread or actor at a time.
public final class DirectorySyncGroup {
    private var directories: [String] = []

    /// An empty group.
    public init() {}

    /// Whether a replacement is waiting for the group's commit.
    public var isEmpty: Bool { directories.isEmpty }

    /// The directories the next ``commit()`` syncs, in the order their first replacement happened.
    public var pendingDirectories: [String] { directories }

    func add(directoryOf path: String) {
        let directory = PathString.deletingLastComponent(path)
        if !directories.contains(directory) { directories.append(directory) }
    }

    /// `fsync`s each directory of the batch once; afterwards every replacement of the batch is durable.
    public func commit() throws {
        let pending = directories
        directories = []
        for directory in pending { try AtomicFile.syncDirectory(directory) }
    }
}
