internal import Foundation

/// Copies a file while hashing it, fsyncs, then re-reads the copy and compares hashes.
enum VerifiedCopy {
    static func copy(
        _ source: String, to target: String, relative: String, mode: mode_t = 0o640, cancelled: CancellationFlag?
    )
        throws(DeliveryError) -> PublishedFile
    {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { throw .posix("cannot open", path: source, errno: errno) }
        defer { close(input) }
        let output = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard output >= 0 else { throw .posix("cannot create", path: target, errno: errno) }
        var hash = SHA256()
        var size: Int64 = 0
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        do throws(DeliveryError) {
            while true {
                try cancelled?.check("copying '\(source)'")
                let n = read(input, buffer, 1 << 20)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .posix("cannot read", path: source, errno: errno)
                }
                if n == 0 { break }
                hash.update(UnsafeRawBufferPointer(start: buffer, count: n))
                var offset = 0
                while offset < n {
                    let w = write(output, buffer + offset, n - offset)
                    if w < 0 {
                        if errno == EINTR { continue }
                        throw .posix("cannot write", path: target, errno: errno)
                    }
                    offset += w
                }
                size += Int64(n)
            }
            if fsync(output) != 0 { throw .posix("cannot fsync", path: target, errno: errno) }
        } catch {
            close(output)
            throw error
        }
        close(output)
        chmod(target, mode)
        let digest = hash.hexDigest()
        let reread = try SHA256.ofFile(target, cancelled: cancelled)
        guard reread == digest else {
            throw DeliveryError(.publishFailed, "copy of '\(source)' to '\(target)' does not read back identically")
        }
        return PublishedFile(relativePath: relative, size: size, sha256: digest)
    }
}
