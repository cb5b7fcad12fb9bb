internal import CArchive
internal import FoundationEssentials
internal import Glibc

/// The decompressed byte stream of an archive file (libarchive "raw" format over any filter), fed to the tar
/// reader through `archive_read_open` callbacks while computing the CRC-32 of everything decompressed.
///
/// libarchive does not check the gzip trailer itself; this lets extraction verify it in the same single pass:
/// for a single-member gzip file the CRC-32 and length (mod 2³²) of the decompressed data must equal the
/// 8-byte trailer. Multi-member gzip files (trailer length differs from the stream length) are not verified.
/// gzip files are inflated by ``GzipInflater`` (1 MiB blocks), everything else by libarchive's filters.
final class DecompressedStream {
    private let raw: OpaquePointer?
    private let gzip: GzipInflater?
    let path: String
    private(set) var crc = Checksum(.crc32)
    private(set) var length: Int64 = 0
    private(set) var failure: String?
    /// Set when the stream grew past ``maxLength``: the failure is a limit, not damage.
    private(set) var limitExceeded = false
    /// Decompressed bytes allowed; reading stops with a failure beyond it.
    var maxLength: Int64 = .max
    private var finished = false

    init(path: String) throws(DeliveryError) {
        self.path = path
        if let gzip = try GzipInflater(path: path) {
            self.gzip = gzip
            raw = nil
            return
        }
        gzip = nil
        guard let raw = archive_read_new() else { throw DeliveryError(.archiveCorrupt, "archive_read_new failed") }
        self.raw = raw
        archive_read_support_filter_all(raw)
        archive_read_support_format_raw(raw)
        var entry: OpaquePointer?
        guard archive_read_open_filename(raw, path, 1 << 20) == ARCHIVE_OK,
            archive_read_next_header(raw, &entry) == ARCHIVE_OK
        else {
            let text = archive_error_string(raw).map { String(cString: $0) } ?? "empty or unreadable file"
            throw DeliveryError(.archiveCorrupt, "cannot read archive '\(path)': \(text)")
        }
    }

    deinit { if let raw { archive_read_free(raw) } }

    /// Whether the file is gzip-compressed (the only filter whose trailer is checked).
    var isGzip: Bool { gzip != nil || archive_filter_code(raw, 0) == 1 /* ARCHIVE_FILTER_GZIP */ }

    /// The next decompressed block (empty at the end), or `nil` after recording a failure.
    func next(_ buffer: UnsafeMutablePointer<UnsafeRawPointer?>) -> Int {
        if finished { return 0 }
        var block: UnsafeRawPointer?
        var size = 0
        if let gzip {
            guard let (start, count) = gzip.next() else {
                failure = gzip.failure ?? "decompression failed"
                return -1
            }
            if count == 0 {
                finished = true
                return 0
            }
            (block, size) = (start, count)
        } else {
            var offset: la_int64_t = 0
            let rc = archive_read_data_block(raw, &block, &size, &offset)
            if rc == ARCHIVE_EOF {
                finished = true
                return 0
            }
            if rc < ARCHIVE_WARN {
                failure = archive_error_string(raw).map { String(cString: $0) } ?? "decompression failed"
                return -1
            }
        }
        if let block, size > 0 { crc.update(UnsafeRawBufferPointer(start: block, count: size)) }
        length += Int64(size)
        if length > maxLength {
            limitExceeded = true
            failure = "it expands to more than \(maxLength) bytes"
            return -1
        }
        buffer.pointee = block
        return size
    }

    /// Reads what the tar reader left (padding after the end-of-archive blocks), then checks the gzip trailer.
    func verifyTrailer() throws(DeliveryError) {
        var scratch: UnsafeRawPointer?
        while true {
            let n = next(&scratch)
            if n < 0 {
                throw DeliveryError(
                    limitExceeded ? .archiveLimitExceeded : .archiveCorrupt,
                    "'\(path)': \(failure ?? "decompression failed")")
            }
            if n == 0 { break }
        }
        guard isGzip else { return }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .posix("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var trailer = [UInt8](repeating: 0, count: 8)
        let fileSize = lseek(fd, 0, SEEK_END)
        guard fileSize >= 18, pread(fd, &trailer, 8, fileSize - 8) == 8 else {
            throw DeliveryError(.archiveCorrupt, "'\(path)' is too short to be a gzip file")
        }
        let storedCRC =
            UInt32(trailer[0]) | UInt32(trailer[1]) << 8 | UInt32(trailer[2]) << 16 | UInt32(trailer[3]) << 24
        let storedSize =
            UInt32(trailer[4]) | UInt32(trailer[5]) << 8 | UInt32(trailer[6]) << 16 | UInt32(trailer[7]) << 24
        guard storedSize == UInt32(truncatingIfNeeded: length) else { return }  // multi-member gzip: not checkable
        if storedCRC != crc.value {
            throw DeliveryError(
                .archiveCorrupt,
                "'\(path)' fails its gzip CRC check (trailer \(storedCRC), data \(crc.value)): the archive is damaged",
                hint: "fetch the archive again; nothing was extracted")
        }
    }
}
