// `struct stat` is owned by the CArchive clang module (archive_entry.h includes <sys/stat.h> first); the
// copy_file_range shim is there too.
internal import CArchive
internal import FoundationEssentials

#if canImport(Glibc)
internal import Glibc
#endif

/// Copies one regular file in bounded chunks, checking a ``CancellationFlag`` between chunks, so a copy of a
/// file of any size stops within one chunk of being cancelled (`FileManager.copyItem` cannot be interrupted
/// inside a file).
///
/// Chunks go through `copy_file_range(2)` (in-kernel, and a reflink or server-side copy where the file system
/// offers one); where the kernel refuses it for this pair of files (`EXDEV` before Linux 5.19, `EINVAL`,
/// `ENOSYS`, `EOPNOTSUPP`), through `read`/`write` — and always so when the caller looks at the bytes on their way
/// (``VerifiedCopy`` hashes them). The target is created with `O_EXCL` (mode 0644 before the umask unless told) and
/// fsynced; on any failure or cancellation it is removed.
public enum ChunkedCopy {
    /// Bytes per chunk: about 10 ms of a local disk, so cancellation is noticed well within a second.
    public static let defaultChunkBytes = 8 << 20

    /// How the bytes move.
    public enum Method: Sendable {
        /// `copy_file_range(2)`, falling back to `read`/`write` where the kernel refuses it.
        case automatic
        /// `read`/`write` only (what the fallback does).
        case readWrite
    }

    /// Copies `source` to the new file `target`.
    /// - Parameters:
    ///   - cancelled: checked before every chunk; defaults to the ``BlockingWork`` flag of this thread.
    ///   - chunkBytes: bytes per chunk.
    ///   - method: ``Method/automatic`` unless the caller must avoid `copy_file_range`.
    ///   - mode: the new file's mode (before the umask).
    ///   - progress: called after every chunk with the bytes copied so far and the source's size.
    ///   - observe: sees every byte copied, in order (the copy then goes by `read`/`write`).
    /// - Returns: the bytes copied.
    /// - Throws: ``DeliveryError``: `cancelled` when the flag was set (the target is removed), `fileSystem`
    ///   for any system call that failed (with the path and `strerror`).
    @discardableResult
    public static func copy(
        _ source: String, to target: String, cancelled: CancellationFlag? = CancellationFlag.current,
        chunkBytes: Int = defaultChunkBytes, method: Method = .automatic, mode: UInt32 = 0o644,
        progress: (Int64, Int64) -> Void = { _, _ in }, observe: ((UnsafeRawBufferPointer) -> Void)? = nil
    ) throws(DeliveryError) -> Int64 {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .posix("cannot open", path: source, errno: errno) }
        defer { close(input) }
        var st = stat()
        guard fstat(input, &st) == 0 else { throw .posix("cannot stat", path: source, errno: errno) }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw DeliveryError(.fileSystem, "'\(source)' is not a regular file")
        }
        let total = Int64(st.st_size)
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard output >= 0 else { throw .posix("cannot create", path: target, errno: errno) }
        var copied: Int64 = 0
        do throws(DeliveryError) {
            var kernelCopy = method == .automatic && observe == nil
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: min(chunkBytes, 1 << 20), alignment: 64)
            defer { buffer.deallocate() }
            while true {
                try cancelled?.check("copying '\(source)'")
                var n = 0
                if kernelCopy {
                    n = carchive_copy_file_range(input, output, UInt(chunkBytes))
                    if n < 0 {
                        let code = errno
                        if code == EINTR { continue }
                        guard code == EXDEV || code == EINVAL || code == ENOSYS || code == EOPNOTSUPP else {
                            throw DeliveryError.posix("cannot copy to", path: target, errno: code)
                        }
                        kernelCopy = false  // offsets are unchanged after a failed call: go on from `copied`
                        continue
                    }
                } else {
                    n = try readWrite(
                        input, output, buffer: buffer, limit: chunkBytes, source: source, target: target,
                        cancelled: cancelled, observe: observe)
                }
                if n == 0 { break }
                copied += Int64(n)
                progress(copied, total)
            }
            if fsync(output) != 0 { throw .posix("cannot fsync", path: target, errno: errno) }
        } catch {
            close(output)
            unlink(target)
            throw error
        }
        close(output)
        return copied
    }

    /// Up to `limit` bytes by `read`/`write` through `buffer` (1 MiB at a time); 0 at the end of the input.
    private static func readWrite(
        _ input: Int32, _ output: Int32, buffer: UnsafeMutableRawPointer, limit: Int, source: String, target: String,
        cancelled: CancellationFlag?, observe: ((UnsafeRawBufferPointer) -> Void)?
    ) throws(DeliveryError) -> Int {
        let capacity = min(limit, 1 << 20)
        var moved = 0
        while moved < limit {
            if moved > 0 { try cancelled?.check("copying '\(source)'") }
            let n = read(input, buffer, min(capacity, limit - moved))
            if n < 0 {
                if errno == EINTR { continue }
                throw .posix("cannot read", path: source, errno: errno)
            }
            if n == 0 { break }
            observe?(UnsafeRawBufferPointer(start: buffer, count: n))
            var offset = 0
            while offset < n {
                let w = write(output, buffer + offset, n - offset)
                if w < 0 {
                    if errno == EINTR { continue }
                    throw .posix("cannot write", path: target, errno: errno)
                }
                offset += w
            }
            moved += n
        }
        return moved
    }
}
