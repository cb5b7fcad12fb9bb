internal import CZlib
internal import Glibc

/// Streaming decompression of a gzip file with zlib's `inflate`, in blocks of 1 MiB, for ``DecompressedStream``.
///
/// Why not libarchive's gzip filter (which also uses zlib): it inflates 64 KiB at a time, so zlib copies half of
/// every block into its 32 KiB window and the tar reader hands out 64 KiB data blocks (one `write(2)` each); with
/// 1 MiB blocks the window copy is 3 % of the data and large files are written in 1 MiB pieces. zlib's own CRC-32
/// is switched off (`inflateValidate`): ``DecompressedStream`` computes it with libdeflate (several times faster)
/// and checks the trailer itself. Concatenated members are read one after the other, as libarchive does; bytes
/// after the last member that do not start another one are ignored.
final class GzipInflater {
    static let blockBytes = 1 << 20

    private let fd: Int32
    private let stream: UnsafeMutablePointer<z_stream>
    private let input: UnsafeMutableRawPointer
    private let output: UnsafeMutableRawPointer
    private var inputEnded = false
    private var ended = false
    /// Why the last ``next()`` failed.
    private(set) var failure: String?

    /// Opens `path` if it starts with a gzip header (deflate method); `nil` for anything else.
    init?(path: String) throws(DeliveryError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .posix("cannot open", path: path, errno: errno) }
        var magic: (UInt8, UInt8, UInt8) = (0, 0, 0)
        guard pread(fd, &magic, 3, 0) == 3, magic == (0x1f, 0x8b, 8) else {
            close(fd)
            return nil
        }
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard czlib_inflate_init_gzip(stream) == Z_OK else {
            stream.deallocate()
            close(fd)
            throw DeliveryError(.archiveCorrupt, "cannot start decompressing '\(path)' (zlib)")
        }
        _ = inflateValidate(stream, 0)
        self.fd = fd
        input = .allocate(byteCount: Self.blockBytes, alignment: 64)
        output = .allocate(byteCount: Self.blockBytes, alignment: 64)
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
        input.deallocate()
        output.deallocate()
        close(fd)
    }

    /// The next decompressed block: its start and length (0 at the end), or `nil` after recording ``failure``.
    /// The block stays valid until the next call.
    func next() -> (UnsafeRawPointer, Int)? {
        if ended { return (UnsafeRawPointer(output), 0) }
        stream.pointee.next_out = output.assumingMemoryBound(to: Bytef.self)
        stream.pointee.avail_out = UInt32(Self.blockBytes)
        while stream.pointee.avail_out > 0 {
            if stream.pointee.avail_in == 0 && !inputEnded {
                guard refill() else { return nil }
            }
            let rc = inflate(stream, Z_NO_FLUSH)
            if rc == Z_STREAM_END {
                if stream.pointee.avail_in == 0 && !inputEnded {
                    guard refill() else { return nil }
                }
                if stream.pointee.avail_in > 0 && stream.pointee.next_in.pointee == 0x1f {
                    inflateReset(stream)  // another member follows
                    continue
                }
                ended = true
                break
            }
            if rc == Z_OK || (rc == Z_BUF_ERROR && !(stream.pointee.avail_in == 0 && inputEnded)) { continue }
            if rc == Z_BUF_ERROR {
                failure = "truncated gzip data (the file ends inside the compressed stream)"
            } else {
                let text = stream.pointee.msg.map { String(cString: $0) } ?? "error \(rc)"
                failure = "gzip decompression failed: \(text)"
            }
            return nil
        }
        return (UnsafeRawPointer(output), Self.blockBytes - Int(stream.pointee.avail_out))
    }

    private func refill() -> Bool {
        while true {
            let n = read(fd, input, Self.blockBytes)
            if n < 0 {
                if errno == EINTR { continue }
                failure = "cannot read: \(String(cString: strerror(errno)))"
                return false
            }
            if n == 0 { inputEnded = true }
            stream.pointee.next_in = input.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = UInt32(n)
            return true
        }
    }
}
