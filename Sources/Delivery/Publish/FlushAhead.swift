// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import CFileIO

#if canImport(Glibc)
internal import Glibc
#endif

/// Files made durable (and hashed) ahead of their publication, each with what identified its content then.
///
/// ``Publisher`` skips the `fdatasync` (and the hash) of a placed file this lists when the file is provably the one
/// flushed: same device, inode, size and modification time, and that time lies before the flush began by more than
/// the file system's timestamp granularity (``FlushAhead``). Why this is enough: every write to a file sets its
/// modification time to the current time (the kernel's coarse clock, at most a tick — 1–10 ms — behind the clock the
/// flush read), so a file written after the flush began would carry a later time than the one recorded. Unchanged
/// time ⇒ no write since ⇒ the bytes the flush hashed and `fdatasync`ed are the bytes published. (Assumed: the
/// file system's timestamps come from this host's clock or one synchronised with it; nobody sets times back with
/// `utimensat` on files being published.) The directory entries of the publication are made durable separately
/// (the publisher's directory `fsync`s), so a skipped file loses nothing.
public struct DurableFiles: Sendable {
    struct Key: Hashable {
        var device: UInt64
        var inode: UInt64
    }
    struct Entry {
        var size: Int64
        var seconds: Int
        var nanoseconds: Int
        var sha256: String
    }
    var entries: [Key: Entry] = [:]

    /// No file.
    public init() {}

    /// How many files are listed.
    public var count: Int { entries.count }

    /// The SHA-256 recorded for the file `st` describes, if it is provably unchanged since it was flushed.
    func digest(of st: stat) -> String? {
        guard let entry = entries[Key(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))],
            entry.size == Int64(st.st_size), entry.seconds == st.st_mtim.tv_sec,
            entry.nanoseconds == st.st_mtim.tv_nsec
        else { return nil }
        return entry.sha256
    }
}

/// Makes files durable before they are published, while something else runs (step 6 flushes and hashes the
/// restored measurement sets while CASA draws the quick-look plots).
///
/// A publication must not be announced before its bytes are on disk, so ``Publisher`` `fdatasync`s every file it
/// places before the final rename. On ext4 each `fdatasync` costs a flush of the disk's cache even when the file is
/// clean (the journal has committed already, so the file system asks for a barrier of its own): 0.9–1.3 s for the
/// 359 files of the demo delivery at load 14, most of the agent's own time in a delivery (bench/overhead.py).
/// Flushing and hashing them ahead, off the critical path, lets the publisher skip both for every file that
/// provably did not change since (``DurableFiles``).
public enum FlushAhead {
    /// Starts write-back of every regular file under `paths` (files, or directory trees walked without following
    /// symbolic links) with `sync_file_range(SYNC_FILE_RANGE_WRITE)`, then hashes each (SHA-256) and waits for it
    /// with `fdatasync`. Files that cannot be opened or read are skipped: this pass only saves time, it decides
    /// nothing.
    ///
    /// Call it inside ``BlockingWork/run(_:)``: it reads every byte and blocks on the disk.
    /// - Parameters:
    ///   - paths: files or directories.
    ///   - cancelled: checked between files; when set the pass stops early (nothing to undo).
    /// - Returns: the files flushed whose modification time was old enough to tell a later write
    ///   (``DurableFiles``).
    @discardableResult
    public static func flush(
        _ paths: [String], cancelled: CancellationFlag? = CancellationFlag.current
    )
        -> DurableFiles
    {
        var files: [String] = []
        for path in paths { collect(path, into: &files, cancelled: cancelled) }
        var durable = DurableFiles()
        for file in files {
            if cancelled?.isCancelled == true { return durable }
            let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            _ = cfileio_sync_file_range(fd, 0, 0, CFILEIO_SYNC_FILE_RANGE_WRITE)
            close(fd)
        }
        for file in files {
            if cancelled?.isCancelled == true { break }
            let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var now = timespec()
            clock_gettime(CLOCK_REALTIME, &now)
            var before = stat()
            guard fstat(fd, &before) == 0, before.st_mode & S_IFMT == S_IFREG else { continue }
            guard let digest = try? SHA256.ofFile(file, cancelled: cancelled), fdatasync(fd) == 0 else { continue }
            var after = stat()
            guard fstat(fd, &after) == 0, same(before, after), old(before.st_mtim, now: now) else { continue }
            durable.entries[.init(device: UInt64(before.st_dev), inode: UInt64(before.st_ino))] = .init(
                size: Int64(before.st_size), seconds: before.st_mtim.tv_sec, nanoseconds: before.st_mtim.tv_nsec,
                sha256: digest)
        }
        return durable
    }

    /// Whether two `stat`s of one file show the same content identity (inode, size, modification time).
    static func same(_ a: stat, _ b: stat) -> Bool {
        a.st_dev == b.st_dev && a.st_ino == b.st_ino && a.st_size == b.st_size && a.st_mtim.tv_sec == b.st_mtim.tv_sec
            && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec
    }

    /// Whether `mtime` lies before `now` by more than the file system's timestamp granularity, so that a write
    /// after `now` would show as a different time. A time with a non-zero sub-second part comes from a file
    /// system that keeps sub-second times (ext4, XFS, Btrfs, tmpfs: the coarse clock's tick, ≤ 10 ms): 0.1 s is
    /// ten ticks. One without may come from a file system that keeps whole seconds (or two, FAT): 2.1 s.
    static func old(_ mtime: timespec, now: timespec) -> Bool {
        let margin: Int64 = mtime.tv_nsec != 0 ? 100_000_000 : 2_100_000_000
        let m = Int64(mtime.tv_sec) * 1_000_000_000 + Int64(mtime.tv_nsec)
        let n = Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
        return m < n - margin
    }

    /// Regular files under `path` (or `path` itself), depth first.
    private static func collect(_ path: String, into files: inout [String], cancelled: CancellationFlag?) {
        if cancelled?.isCancelled == true { return }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        switch st.st_mode & S_IFMT {
        case S_IFREG:
            files.append(path)
        case S_IFDIR:
            guard let dir = opendir(path) else { return }
            defer { closedir(dir) }
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                collect(path + "/" + name, into: &files, cancelled: cancelled)
            }
        default:
            break
        }
    }
}
