// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first).
internal import CArchive
internal import CFileIO
internal import FoundationEssentials
internal import Glibc

/// Puts items into a staging tree: link/move within a file system, verified copy across.
struct Placement {
    let areaDevice: UInt64?
    let modes: PublishModes
    let cancelled: CancellationFlag?
    /// Files flushed and hashed ahead (``FlushAhead``): neither hashed nor fsynced again when provably unchanged.
    var durable = DurableFiles()
    /// How many placed files ``durable`` spared a hash and an `fdatasync`.
    var reused = 0
    var directories: [String] = []
    var moved: [(from: String, to: String)] = []
    /// Linked or moved files hashed, whose write-back has been started but not waited for (``finishWriteBack()``).
    var writingBack: [String] = []

    mutating func place(
        _ source: String, at target: String, relative: String, into files: inout [PublishedFile]
    )
        throws(DeliveryError)
    {
        try cancelled?.check("publishing '\(relative)'")
        var st = stat()
        guard lstat(source, &st) == 0 else { throw .posix("cannot stat", path: source, errno: errno) }
        let type = st.st_mode & S_IFMT
        let sameDevice = areaDevice == UInt64(st.st_dev)
        switch type {
        case S_IFDIR:
            try FileSystem.makeDirectory(target, mode: modes.directory)
            chmod(target, modes.directory)
            directories.append(target)
            let children = ((try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []).sorted()
            for child in children {
                try place(
                    FileSystem.join(source, child), at: FileSystem.join(target, child),
                    relative: relative + "/" + child, into: &files)
            }
        case S_IFLNK:
            let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: source)
            if symlink(destination ?? "", target) != 0 {
                throw .posix("cannot create symlink", path: target, errno: errno)
            }
        case S_IFREG:
            if sameDevice && Glibc.link(source, target) == 0 {
                chmod(target, modes.file)
                files.append(
                    PublishedFile(relativePath: relative, size: Int64(st.st_size), sha256: try hashAndSync(target)))
            } else {
                files.append(
                    try VerifiedCopy.copy(
                        source, to: target, relative: relative, mode: modes.file, cancelled: cancelled))
            }
        default:
            break  // sockets, FIFOs, devices are not published
        }
    }

    /// Records (hashes, fsyncs, chmods) a tree that was moved in whole.
    mutating func collect(_ path: String, relative: String, into files: inout [PublishedFile]) throws(DeliveryError) {
        try cancelled?.check("publishing '\(relative)'")
        var st = stat()
        guard lstat(path, &st) == 0 else { throw .posix("cannot stat", path: path, errno: errno) }
        switch st.st_mode & S_IFMT {
        case S_IFDIR:
            chmod(path, modes.directory)
            directories.append(path)
            for child in ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() {
                try collect(FileSystem.join(path, child), relative: relative + "/" + child, into: &files)
            }
        case S_IFREG:
            chmod(path, modes.file)
            files.append(PublishedFile(relativePath: relative, size: Int64(st.st_size), sha256: try hashAndSync(path)))
        default:
            break
        }
    }

    /// Puts moved items back where they came from (failure path).
    func undoMoves() {
        for (from, to) in moved.reversed() { _ = Glibc.rename(to, from) }
    }

    /// Hashes a linked or moved file and starts its write-back (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, no
    /// wait): the disk works on it while the next files are hashed. ``finishWriteBack()`` waits for them all.
    private mutating func hashAndSync(_ path: String) throws(DeliveryError) -> String {
        // Checked after the link or rename (which change only the inode's ctime and link count, not the times
        // ``DurableFiles`` compares): unchanged means the recorded digest is this content and it is on disk.
        var st = stat()
        if durable.count > 0, lstat(path, &st) == 0, let digest = durable.digest(of: st) {
            reused += 1
            return digest
        }
        let digest = try SHA256.ofFile(path, cancelled: cancelled)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = cfileio_sync_file_range(fd, 0, 0, CFILEIO_SYNC_FILE_RANGE_WRITE)
            close(fd)
            writingBack.append(path)
        }
        return digest
    }

    /// Makes the data of every hashed file durable: `fdatasync` of each, after all their write-backs were started.
    /// One `fsync` per file, each a journal commit of its own, was most of the agent's own time in a delivery of
    /// an MS (hundreds of table files; bench/overhead.py); the first `fdatasync` now commits the block allocations
    /// of all of them, and the others find their data written. The names (links, renames) become durable with the
    /// directory `fsync`s that follow.
    mutating func finishWriteBack() {
        for path in writingBack {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd >= 0 {
                fdatasync(fd)
                close(fd)
            }
        }
        writingBack = []
    }
}
