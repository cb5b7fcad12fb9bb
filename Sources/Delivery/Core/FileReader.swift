internal import CArchive
internal import Glibc

/// A file opened read-only for positioned reads (what `FileHandle(forReadingAtPath:)` served, without Foundation).
/// Closed when released.
public final class FileReader {
    private let descriptor: Int32

    /// Opens `path`; nil when it cannot be opened.
    public init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// The file's current size in bytes.
    public var size: UInt64 {
        var st = stat()
        return fstat(descriptor, &st) == 0 ? UInt64(st.st_size) : 0
    }

    /// Up to `count` bytes from `offset` (fewer at the end of the file); nil on a read error.
    public func read(at offset: UInt64, upTo count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            let n = bytes.withUnsafeMutableBytes { raw in
                pread(descriptor, raw.baseAddress! + filled, count - filled, off_t(offset) + off_t(filled))
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return nil }
            if n == 0 { break }
            filled += n
        }
        bytes.removeLast(count - filled)
        return bytes
    }

    /// Everything from `offset` to the end of the file; nil on a read error.
    public func readToEnd(from offset: UInt64 = 0) -> [UInt8]? {
        var result: [UInt8] = []
        var position = offset
        while true {
            guard let chunk = read(at: position, upTo: 1 << 16) else { return nil }
            if chunk.isEmpty { return result }
            result += chunk
            position += UInt64(chunk.count)
        }
    }
}

/// Writing text to the standard streams (`FileHandle.standardOutput/standardError.write`, without Foundation).
public enum StandardStream {
    /// Writes all of `text` to `descriptor` (1 standard output, 2 standard error), retrying short writes.
    public static func write(_ text: String, to descriptor: Int32) {
        write(Array(text.utf8), to: descriptor)
    }

    /// Writes all of `bytes` to `descriptor`, retrying short writes; stops quietly on an error (a closed pipe).
    public static func write(_ bytes: [UInt8], to descriptor: Int32) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            written += n
        }
    }
}
