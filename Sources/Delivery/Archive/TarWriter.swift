internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// Streams files and directory trees into one pax tar (optionally gzip'd) with libarchive.
final class TarWriter {
    private let archive: OpaquePointer
    private let path: String
    private var closed = false
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
    /// Checked between members and between 1 MiB blocks.
    private let cancelled: CancellationFlag?

    init(path: String, gzip: Bool, cancelled: CancellationFlag? = CancellationFlag.current) throws(DeliveryError) {
        self.cancelled = cancelled
        guard let archive = archive_write_new() else { throw DeliveryError(.fileSystem, "archive_write_new failed") }
        self.archive = archive
        self.path = path
        archive_write_set_format_pax_restricted(archive)
        if gzip { archive_write_add_filter_gzip(archive) }
        archive_write_set_bytes_in_last_block(archive, 1)
        if archive_write_open_filename(archive, path) != ARCHIVE_OK {
            let text = Self.message(archive)
            archive_write_free(archive)
            buffer.deallocate()
            throw DeliveryError(.fileSystem, "cannot create '\(path)': \(text)")
        }
    }

    deinit {
        if !closed { archive_write_free(archive) }
        buffer.deallocate()
    }

    /// Adds `source` (file, symlink or directory tree) under the member name `name`.
    func add(_ source: String, as name: String) throws(DeliveryError) {
        try cancelled?.check("writing '\(path)'")
        var st = stat()
        guard lstat(source, &st) == 0 else { throw .posix("cannot stat", path: source, errno: errno) }
        guard let entry = archive_entry_new() else { throw DeliveryError(.fileSystem, "archive_entry_new failed") }
        defer { archive_entry_free(entry) }
        archive_entry_copy_stat(entry, &st)
        archive_entry_set_uid(entry, 0)
        archive_entry_set_gid(entry, 0)
        let type = st.st_mode & S_IFMT
        archive_entry_copy_pathname(entry, type == S_IFDIR ? name + "/" : name)
        if type == S_IFLNK {
            var target = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(source, &target, Int(PATH_MAX))
            guard n >= 0 else { throw .posix("cannot read link", path: source, errno: errno) }
            target[n] = 0
            archive_entry_copy_symlink(entry, target)
        } else if type != S_IFREG && type != S_IFDIR {
            return  // sockets, FIFOs, devices are not published
        }
        if archive_write_header(archive, entry) < ARCHIVE_WARN {
            throw DeliveryError(.fileSystem, "cannot add '\(source)' to '\(path)': \(Self.message(archive))")
        }
        if type == S_IFREG {
            try copyContent(of: source)
        } else if type == S_IFDIR {
            let children = ((try? FileManager.default.contentsOfDirectory(atPath: source)) ?? []).sorted()
            for child in children {
                try add(FileSystem.join(source, child), as: name + "/" + child)
            }
        }
    }

    private func copyContent(of source: String) throws(DeliveryError) {
        let fd = open(source, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .posix("cannot open", path: source, errno: errno) }
        defer { Glibc.close(fd) }
        while true {
            try cancelled?.check("writing '\(path)'")
            let n = read(fd, buffer, 1 << 20)
            if n < 0 {
                if errno == EINTR { continue }
                throw .posix("cannot read", path: source, errno: errno)
            }
            if n == 0 { return }
            if archive_write_data(archive, buffer, n) < 0 {
                throw DeliveryError(.fileSystem, "cannot write '\(path)': \(Self.message(archive))")
            }
        }
    }

    /// Finishes the archive (trailer, gzip footer) and closes it; fsyncs the file.
    func close() throws(DeliveryError) {
        closed = true
        let rc = archive_write_close(archive)
        let text = Self.message(archive)
        archive_write_free(archive)
        if rc != ARCHIVE_OK { throw DeliveryError(.fileSystem, "cannot finish '\(path)': \(text)") }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            Glibc.close(fd)
        }
    }

    private static func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "unknown libarchive error"
    }
}
