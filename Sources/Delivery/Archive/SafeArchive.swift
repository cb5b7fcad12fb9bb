internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// Tar extraction and creation with libarchive, safe against hostile archives.
public enum SafeArchive {
    /// Extracts a tar archive (any compression libarchive reads: gzip, bzip2, xz, zstd, none) into `directory`.
    ///
    /// Refuses, with code `unsafeArchiveEntry`: absolute member names, `..` components, symlinks whose target
    /// leaves the directory — resolved for real beneath it (``BeneathResolver``: `openat2` with
    /// `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`, so chains of links that each look inside are caught; without
    /// `openat2`, links that traverse links are refused) —, hard links whose target is outside or reached through a
    /// symlink, writing through a symlink (every entry is created relative to its parent directory's descriptor,
    /// reached from the root one component at a time with `O_NOFOLLOW`: ``StagingWriter``), device/FIFO/socket
    /// entries, set-user-ID and set-group-ID files. A hard
    /// link is allowed only to a regular file an earlier entry extracted inside the directory (no set-id bits, no
    /// data of its own), and counts against the size limits as a copy would: the same rule as the CASA side's
    /// `casa_steps.safe_extract`, tested from both sides with `tests/data/malicious-archives.json`.
    /// ``ArchiveLimits`` violations fail with `archiveLimitExceeded`, unreadable data with `archiveCorrupt`.
    /// Everything is first extracted into a hidden staging directory inside `directory` and moved into place
    /// only when the whole archive succeeded, so a failure leaves no partial output. Existing top-level
    /// names are not overwritten (`fileSystemError`). Permissions are those of the archive minus the umask
    /// (no set-uid/set-gid, owners not restored); modification times are restored.
    ///
    /// libarchive itself does not check the gzip CRC trailer; this function does, in the same single pass
    /// (single-member gzip files; multi-member ones are not checkable), so a damaged .tgz fails with
    /// `archiveCorrupt` instead of extracting silently wrong bytes.
    /// - Parameters:
    ///   - archivePath: the archive file.
    ///   - directory: the existing directory to extract into.
    ///   - limits: entry count and size bounds.
    ///   - cancelled: checked between entries and between data blocks (at most 1 MiB apart); when set, the
    ///     extraction stops with code `cancelled` and the staging directory is removed. Defaults to the flag of
    ///     the ``BlockingWork`` running on this thread. Call this inside ``BlockingWork/run(_:)``: it blocks.
    /// - Returns: what was extracted.
    /// - Throws: ``DeliveryError``.
    public static func extract(
        _ archivePath: String, into directory: String, limits: ArchiveLimits = .init(),
        cancelled: CancellationFlag? = CancellationFlag.current
    ) throws(DeliveryError) -> ExtractionSummary {
        guard FileSystem.isDirectory(directory) else {
            throw DeliveryError(.fileSystem, "extraction target '\(directory)' is not a directory")
        }
        let staging = FileSystem.join(directory, ".extract-\(UUID().uuidString.prefix(12))")
        try FileSystem.makeDirectory(staging, mode: 0o700)
        do throws(DeliveryError) {
            var summary = try ArchiveExtraction(
                archivePath: archivePath, staging: staging, limits: limits, cancelled: cancelled
            ).run()
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: staging)) ?? []).sorted()
            for name in names where FileSystem.exists(FileSystem.join(directory, name)) {
                throw DeliveryError(
                    .fileSystem, "'\(name)' already exists in '\(directory)'; not overwriting it",
                    hint: "remove the earlier output before extracting again")
            }
            var moved: [String] = []
            do throws(DeliveryError) {
                for name in names {
                    try FileSystem.rename(FileSystem.join(staging, name), FileSystem.join(directory, name))
                    moved.append(name)
                }
            } catch {
                for name in moved { FileSystem.removeTree(FileSystem.join(directory, name)) }
                throw error
            }
            FileSystem.removeTree(staging)
            try? AtomicFile.syncDirectory(directory)
            summary.topLevelNames = names
            return summary
        } catch {
            FileSystem.removeTree(staging)
            throw error
        }
    }

    /// Writes a tar (gzip-compressed if `gzip`) of `directory`, whose members start with the directory's name.
    ///
    /// The archive is written to a temporary name and renamed into place; symlinks are stored as symlinks.
    /// - Returns: the size of the archive in bytes.
    /// - Throws: ``DeliveryError``.
    @discardableResult
    public static func createTar(of directory: String, at tarPath: String, gzip: Bool) throws(DeliveryError) -> Int64 {
        guard FileSystem.isDirectory(directory) else {
            throw DeliveryError(.fileSystem, "'\(directory)' is not a directory")
        }
        let temporary = FileSystem.temporarySibling(of: tarPath, tag: "tar")
        do throws(DeliveryError) {
            let writer = try TarWriter(path: temporary, gzip: gzip)
            try writer.add(directory, as: FileSystem.baseName(directory))
            try writer.close()
            try FileSystem.rename(temporary, tarPath)
        } catch {
            FileSystem.remove(temporary)
            throw error
        }
        return FileSystem.size(tarPath) ?? 0
    }
}

/// One run of libarchive reading `archivePath` into `staging`.
struct ArchiveExtraction {
    let archivePath: String
    let staging: String
    let limits: ArchiveLimits
    var cancelled: CancellationFlag? = nil
    /// How links are resolved beneath the staging directory; `nil`: `openat2` when the kernel has it.
    var resolution: BeneathResolver.Mode? = nil

    func run() throws(DeliveryError) -> ExtractionSummary {
        guard let reader = archive_read_new() else { throw DeliveryError(.archiveCorrupt, "archive_read_new failed") }
        defer { archive_read_free(reader) }
        // Decompression happens in `stream` (which also checks the gzip CRC); `reader` parses the tar from it.
        let stream = try DecompressedStream(path: archivePath)
        let compressedBytes = FileSystem.size(archivePath) ?? 0
        let maxExpanded = min(
            limits.maxExpandedBytes(compressedBytes: compressedBytes), limits.maxTotalBytes + (64 << 20))
        stream.maxLength = maxExpanded
        let resolver = try BeneathResolver(root: staging, mode: resolution)
        let disk = try StagingWriter(staging: staging, archivePath: archivePath)
        archive_read_support_format_tar(reader)
        archive_read_support_format_gnutar(reader)
        let opened = withExtendedLifetime(stream) {
            archive_read_open(
                reader, Unmanaged.passUnretained(stream).toOpaque(), nil,
                { _, context, buffer in
                    Unmanaged<DecompressedStream>.fromOpaque(context!).takeUnretainedValue().next(buffer!)
                }, nil)
        }
        if opened != ARCHIVE_OK {
            throw DeliveryError(
                stream.limitExceeded ? .archiveLimitExceeded : .archiveCorrupt,
                "cannot open archive '\(archivePath)': \(stream.failure ?? message(reader))")
        }
        var summary = ExtractionSummary(entries: 0, files: 0, directories: 0, symlinks: 0, bytes: 0, topLevelNames: [])
        var declaredTotal: Int64 = 0
        var entry: OpaquePointer?
        while true {
            try cancelled?.check("extraction of '\(archivePath)'")
            let rc = archive_read_next_header(reader, &entry)
            if rc == ARCHIVE_EOF { break }
            guard rc == ARCHIVE_OK || rc == ARCHIVE_WARN, let entry else {
                if stream.limitExceeded { throw ratioExceeded(stream) }
                throw DeliveryError(
                    .archiveCorrupt,
                    "'\(archivePath)' is not a readable tar archive: \(stream.failure ?? message(reader))")
            }
            summary.entries += 1
            if summary.entries > limits.maxEntries {
                throw DeliveryError(
                    .archiveLimitExceeded, "'\(archivePath)' has more than \(limits.maxEntries) entries",
                    hint: "raise the archive entry limit if this archive is genuine")
            }
            let name = archive_entry_pathname(entry).map { String(cString: $0) } ?? ""
            guard let components = ArchivePath.components(name) else {
                throw unsafe(name, "absolute path, '..' component or empty name")
            }
            let type = archive_entry_filetype(entry) & S_IFMT
            let size = archive_entry_size_is_set(entry) != 0 ? archive_entry_size(entry) : 0
            if archive_entry_perm(entry) & (S_ISUID | S_ISGID) != 0 && type != S_IFDIR {
                throw unsafe(name, "set-user-ID or set-group-ID entries are not allowed")
            }
            // The entry's directory, reached from the root without following any link (writing through a link,
            // even one that points inside, is refused) and created when missing.
            let parent = try disk.directory(components.dropLast(), for: name)
            var linkedBytes: Int64 = 0
            var linkedPath: String?
            var symlinkTarget = ""
            if let hardlink = archive_entry_hardlink(entry).map({ String(cString: $0) }) {
                let linked = try checkHardLink(name, to: hardlink, size: size, resolver: resolver)
                linkedPath = linked.path
                linkedBytes = linked.size
                summary.files += 1
            } else {
                switch type {
                case S_IFREG: summary.files += 1
                case S_IFDIR: summary.directories += 1
                case S_IFLNK:
                    symlinkTarget = archive_entry_symlink(entry).map { String(cString: $0) } ?? ""
                    if case .refused(let why) = resolver.checkSymlink(entry: components, target: symlinkTarget) {
                        throw unsafe(name, why)
                    }
                    summary.symlinks += 1
                default:
                    throw unsafe(name, "device, FIFO or socket entries are not allowed")
                }
            }
            if size > limits.maxEntryBytes {
                throw DeliveryError(
                    .archiveLimitExceeded,
                    "entry '\(name)' of '\(archivePath)' is \(size) bytes, above the \(limits.maxEntryBytes)-byte limit"
                )
            }
            // A hard link costs no space, but counts as a copy of its file: the rule is the same as for the
            // CASA side's extractor, which may write a copy.
            declaredTotal += max(0, size) + linkedBytes
            if declaredTotal > limits.maxTotalBytes {
                throw DeliveryError(
                    .archiveLimitExceeded, "'\(archivePath)' expands to more than \(limits.maxTotalBytes) bytes",
                    hint: "raise the archive size limit if this archive is genuine")
            }
            if declaredTotal > maxExpanded {
                throw DeliveryError(
                    .archiveLimitExceeded,
                    "'\(archivePath)' (\(compressedBytes) bytes) declares \(declaredTotal) bytes of content, more than "
                        + "\(limits.maxExpansionRatio) times its size: refusing it as a decompression bomb",
                    hint: "raise archive.limits.maxExpansionRatio if this archive is genuine; nothing was extracted")
            }
            let perm = mode_t(archive_entry_perm(entry)) & 0o777
            let times = Self.times(entry)
            if let linkedPath {
                try disk.makeHardLink(components, in: parent, target: linkedPath, for: name)
            } else if type == S_IFDIR {
                try disk.makeDirectory(components, in: parent, perm: perm, times: times, for: name)
            } else if type == S_IFLNK {
                try disk.makeSymlink(components, in: parent, target: symlinkTarget, times: times, for: name)
            } else {
                let fd = try disk.createFile(components, in: parent, perm: perm, for: name)
                var end: Int64 = 0
                do throws(DeliveryError) {
                    if size > 0 {
                        let copied = try copyData(reader, to: fd, name: name, stream: stream)
                        summary.bytes += copied.bytes
                        end = copied.end
                    }
                } catch {
                    close(fd)
                    throw error
                }
                try disk.finishFile(fd, end: end, size: max(0, size), times: times, for: name)
            }
        }
        try stream.verifyTrailer()
        try disk.finish()
        // An earlier link may have been harmless when written and lead outside through a later one: check every
        // link again now that all exist (no link was extracted: none can be in the fresh staging tree).
        if summary.symlinks > 0, let (path, why) = resolver.verifyTree() {
            throw unsafe(path, why)
        }
        return summary
    }

    /// The one rule for hard links (the CASA side's `casa_steps.safe_extract` applies the same): the link names
    /// a regular file an earlier entry of this archive extracted inside the target, reached without traversing
    /// any symbolic link, without set-id bits, and carries no data of its own. Returns the linked file's path
    /// below the staging directory and its size, which counts against the size limits as a copy would.
    /// The staging directory is fresh, so anything found there came from this archive.
    private func checkHardLink(
        _ name: String, to hardlink: String, size: Int64, resolver: borrowing BeneathResolver
    ) throws(DeliveryError) -> (path: String, size: Int64) {
        guard let target = ArchivePath.components(hardlink) else {
            throw unsafe(name, "hard link to '\(hardlink)' outside the target")
        }
        // link(2) follows symlinks in the target's directories: none may be traversed.
        switch resolver.check(target, followLast: false, allowLinks: false) {
        case .refused(let why): throw unsafe(name, "hard link to '\(hardlink)': \(why)")
        case .missing:
            throw unsafe(name, "hard link to '\(hardlink)', which no earlier entry of the archive extracted")
        case .beneath: break
        }
        let path = target.joined(separator: "/")
        var st = stat()
        guard lstat(staging + "/" + path, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw unsafe(name, "hard link to '\(hardlink)', which is not a regular file")
        }
        if st.st_mode & (S_ISUID | S_ISGID) != 0 {
            throw unsafe(name, "hard link to '\(hardlink)', a set-user-ID or set-group-ID file")
        }
        if size > 0 {
            throw unsafe(name, "hard link to '\(hardlink)' carrying \(size) bytes of data")
        }
        return (path, Int64(st.st_size))
    }

    /// Writes the entry's data blocks to `fd` at their offsets (holes of sparse entries stay holes).
    /// - Returns: the bytes written and the end of the last block.
    private func copyData(
        _ reader: OpaquePointer, to fd: Int32, name: String, stream: DecompressedStream
    ) throws(DeliveryError) -> (bytes: Int64, end: Int64) {
        var written: Int64 = 0
        var end: Int64 = 0
        var buffer: UnsafeRawPointer?
        var length = 0
        var offset: la_int64_t = 0
        while true {
            try cancelled?.check("extraction of '\(archivePath)'")
            let rc = archive_read_data_block(reader, &buffer, &length, &offset)
            if rc == ARCHIVE_EOF { return (written, end) }
            if rc < ARCHIVE_WARN {
                if stream.limitExceeded { throw ratioExceeded(stream) }
                throw DeliveryError(.archiveCorrupt, "cannot read '\(name)' from '\(archivePath)': \(message(reader))")
            }
            written += Int64(length)
            if written > limits.maxEntryBytes {
                throw DeliveryError(.archiveLimitExceeded, "entry '\(name)' exceeds \(limits.maxEntryBytes) bytes")
            }
            var done = 0
            while done < length, let buffer {
                let n = pwrite(fd, buffer + done, length - done, off_t(offset) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw DeliveryError(
                        .fileSystem, "cannot write '\(name)' of '\(archivePath)': \(String(cString: strerror(errno)))")
                }
                done += n
            }
            end = max(end, Int64(offset) + Int64(length))
        }
    }

    /// The entry's access and modification times (`UTIME_OMIT` for those the archive does not carry).
    private static func times(_ entry: OpaquePointer) -> (timespec, timespec) {
        let omit = timespec(tv_sec: 0, tv_nsec: StagingWriter.timeOmit)
        let atime =
            archive_entry_atime_is_set(entry) != 0
            ? timespec(tv_sec: time_t(archive_entry_atime(entry)), tv_nsec: Int(archive_entry_atime_nsec(entry)))
            : omit
        let mtime =
            archive_entry_mtime_is_set(entry) != 0
            ? timespec(tv_sec: time_t(archive_entry_mtime(entry)), tv_nsec: Int(archive_entry_mtime_nsec(entry)))
            : omit
        return (atime, mtime)
    }

    private func ratioExceeded(_ stream: DecompressedStream) -> DeliveryError {
        DeliveryError(
            .archiveLimitExceeded,
            "'\(archivePath)' \(stream.failure ?? "expands too much") (at most \(limits.maxExpansionRatio) times its "
                + "size, \(limits.maxTotalBytes) bytes in total): refusing it as a decompression bomb",
            hint:
                "raise archive.limits.maxExpansionRatio or maxTotalBytes if this archive is genuine; nothing was extracted"
        )
    }

    private func unsafe(_ name: String, _ reason: String) -> DeliveryError {
        DeliveryError(
            .unsafeArchiveEntry, "refusing entry '\(name)' of '\(archivePath)': \(reason)",
            hint: "the archive is damaged or hostile; nothing was extracted")
    }

    private func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
