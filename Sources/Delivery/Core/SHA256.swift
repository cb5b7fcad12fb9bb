internal import CCrypto
internal import FoundationEssentials
internal import Glibc

/// A streaming SHA-256, for publish manifests and request digests: libcrypto's EVP interface (OpenSSL 3, which
/// uses the CPU's SHA extensions where it has them). libcrypto is loaded anyway (libcurl's TLS); `bench/hash.sh`
/// measured it against the FIPS 180-4 loop this module used to carry (see bench/README.md).
///
/// A value type: copying a `SHA256` copies the running state (`EVP_MD_CTX_copy_ex`) on the next update of
/// either copy, so `hexDigest()` can be taken at any point and the hash keeps being updated.
public struct SHA256: Sendable {
    /// Owns one `EVP_MD_CTX`.
    ///
    /// `@unchecked Sendable`: the context is only touched through a `SHA256` value, which copies it before writing
    /// when it is shared (`isKnownUniquelyReferenced`), so no two threads ever write the same context.
    private final class Context: @unchecked Sendable {
        let raw: OpaquePointer

        init() {
            guard let raw = EVP_MD_CTX_new(), EVP_DigestInit_ex(raw, EVP_sha256(), nil) == 1 else {
                fatalError("libcrypto cannot initialise SHA-256")
            }
            self.raw = raw
        }

        init(copying other: Context) {
            guard let raw = EVP_MD_CTX_new(), EVP_MD_CTX_copy_ex(raw, other.raw) == 1 else {
                fatalError("libcrypto cannot copy a SHA-256 context")
            }
            self.raw = raw
        }

        deinit { EVP_MD_CTX_free(raw) }
    }

    private var context = Context()

    /// An empty hash.
    public init() {}

    /// Feeds bytes.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if !isKnownUniquelyReferenced(&context) { context = Context(copying: context) }
        EVP_DigestUpdate(context.raw, base, bytes.count)
    }

    /// Feeds bytes.
    public mutating func update(_ bytes: some Collection<UInt8>) {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) {
            return done
        }
        let copy = Array(bytes)
        copy.withUnsafeBytes { update($0) }
    }

    /// The digest as lowercase hex (finalises a copy; the hash can keep being updated).
    public func hexDigest() -> String {
        let final = Context(copying: context)
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        EVP_DigestFinal_ex(final.raw, &digest, &length)
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(64)
        for byte in digest.prefix(Int(length)) {
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0xF)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    /// The SHA-256 of a file, read in 1 MiB blocks.
    /// - Parameter cancelled: checked between blocks; defaults to the flag of the ``BlockingWork`` on this thread.
    public static func ofFile(
        _ path: String, cancelled: CancellationFlag? = CancellationFlag.current
    ) throws(DeliveryError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .posix("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var hash = SHA256()
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 64)
        defer { buffer.deallocate() }
        while true {
            try cancelled?.check("hashing '\(path)'")
            let n = read(fd, buffer, 1 << 20)
            if n < 0 {
                if errno == EINTR { continue }
                throw .posix("cannot read", path: path, errno: errno)
            }
            if n == 0 { break }
            hash.update(UnsafeRawBufferPointer(start: buffer, count: n))
        }
        return hash.hexDigest()
    }
}
