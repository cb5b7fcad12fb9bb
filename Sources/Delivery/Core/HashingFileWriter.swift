internal import CFileIO
internal import FoundationEssentials
internal import Glibc

/// Writes a file sequentially while counting and checksumming what it writes, with write-behind.
///
/// Each block is checksummed and written by the caller's thread (a libcurl write callback, a copy loop) straight
/// from the caller's buffer: no copy into chunks of our own, no hand-off to another thread. Every
/// ``writeBehindBytes`` the range written since the last time is handed to the kernel's write-back with
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which starts the disk writes and returns at once, so the disk works
/// while the network delivers and ``finish()``'s `fsync` only waits for the last few MiB instead of the whole file
/// (on tmpfs the call does nothing). A process killed mid-transfer loses nothing it had written: the bytes are in
/// the page cache and the `.part` is what the next attempt resumes from. On resume the existing prefix is
/// re-hashed first. Not thread-safe: owned by one thread at a time.
final class HashingFileWriter {
    let path: String
    private(set) var bytesWritten: Int64 = 0
    private(set) var checksum: Checksum?
    private var running: Checksum
    private var fd: Int32
    /// Start of the range not yet handed to write-back.
    private var writeBehindFrom: Int64 = 0
    private var finished = false

    /// How much is written between two `sync_file_range` calls. 8 MiB: large enough that the call's cost is
    /// nothing next to the copy, small enough that the disk starts early (bench/fetch.sh on ext4).
    static let writeBehindBytes: Int64 = 8 << 20

    /// Opens `path` for writing. With `resume`, keeps the existing content (hashed again) and appends.
    init(path: String, variant: ChecksumVariant, resume: Bool) throws(DeliveryError) {
        self.path = path
        running = Checksum(variant)
        let fd: Int32
        if resume, let existing = FileSystem.size(path), existing > 0 {
            running = try Checksum.ofFile(path, variant: variant, limit: existing)
            fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
            bytesWritten = existing
            writeBehindFrom = existing
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        }
        if fd < 0 { throw .posix("cannot open for writing", path: path, errno: errno) }
        self.fd = fd
    }

    deinit { closeQuietly() }

    /// Discards everything written so far and starts again from byte 0.
    func restart() throws(DeliveryError) {
        if ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) < 0 {
            throw .posix("cannot truncate", path: path, errno: errno)
        }
        bytesWritten = 0
        writeBehindFrom = 0
        running = Checksum(running.variant)
    }

    /// Checksums and writes all bytes.
    func write(_ bytes: UnsafeRawBufferPointer) throws(DeliveryError) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        running.update(bytes)
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, base + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .posix("cannot write", path: path, errno: errno)
            }
            offset += n
        }
        bytesWritten += Int64(bytes.count)
        if bytesWritten - writeBehindFrom >= Self.writeBehindBytes {
            // Only a hint to start write-back: a failure here (EINVAL on an odd file system) changes nothing,
            // the final fsync still decides durability.
            _ = cfileio_sync_file_range(
                fd, writeBehindFrom, bytesWritten - writeBehindFrom, CFILEIO_SYNC_FILE_RANGE_WRITE)
            writeBehindFrom = bytesWritten
        }
    }

    /// Fsyncs and closes; returns the checksum (also kept in ``checksum``).
    @discardableResult
    func finish() throws(DeliveryError) -> Checksum {
        if let checksum { return checksum }
        finished = true
        let rc = fsync(fd)
        let code = errno
        close(fd)
        fd = -1
        if rc != 0 { throw .posix("cannot fsync", path: path, errno: code) }
        checksum = running
        return running
    }

    /// Stops without syncing (abandoned transfer); the file keeps whatever was written.
    func closeQuietly() {
        guard !finished else { return }
        finished = true
        close(fd)
        fd = -1
    }
}
