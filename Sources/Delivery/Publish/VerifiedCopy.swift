internal import FoundationEssentials
internal import Glibc

/// Copies a file while hashing it (``ChunkedCopy``, its bytes seen on their way), fsyncs, then re-reads the copy and
/// compares hashes.
enum VerifiedCopy {
    static func copy(
        _ source: String, to target: String, relative: String, mode: mode_t = 0o640, cancelled: CancellationFlag?
    ) throws(DeliveryError) -> PublishedFile {
        var hash = SHA256()
        let size = try ChunkedCopy.copy(
            source, to: target, cancelled: cancelled, method: .readWrite, mode: 0o600, observe: { hash.update($0) })
        chmod(target, mode)
        let digest = hash.hexDigest()
        let reread = try SHA256.ofFile(target, cancelled: cancelled)
        guard reread == digest else {
            throw DeliveryError(.publishFailed, "copy of '\(source)' to '\(target)' does not read back identically")
        }
        return PublishedFile(relativePath: relative, size: size, sha256: digest)
    }
}
