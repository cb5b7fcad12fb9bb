internal import CDeflate
internal import FoundationEssentials
internal import Glibc

/// The checksum algorithms NGAS records for archived files (`ngas_files.checksum_plugin`).
public enum ChecksumVariant: String, Sendable, Codable, CaseIterable {
    /// zlib / Python `binascii.crc32` (polynomial 0xEDB88320); NGAS may store it signed, so values are compared `& 0xffffffff`.
    case crc32
    /// CRC-32C (Castagnoli, polynomial 0x82F63B78).
    case crc32c
    /// zlib crc32 stored unsigned (same arithmetic as ``crc32``).
    case crc32z
}

/// A streaming CRC-32 / CRC-32C computation.
///
/// CRC-32 (``ChecksumVariant/crc32``, ``ChecksumVariant/crc32z``) is libdeflate's `libdeflate_crc32` (carry-less
/// multiplication with PCLMULQDQ where the CPU has it). `bench/hash.sh` measured it against zlib's `crc32_z` and
/// against the slicing-by-16 table this module used to carry: libdeflate was the fastest (see bench/README.md), and
/// CRC-32 is most of the agent's CPU while it streams a download or checks a .tgz, so it earns the dependency.
/// CRC-32C has no implementation among our libraries (zlib, libdeflate and libcrypto have none), so
/// ``CRC32CTable`` keeps our own table-driven one for the rare NGAS `crc32c` plug-in.
///
/// ```swift
/// var checksum = Checksum(.crc32)
/// buffer.withUnsafeBytes { checksum.update($0) }
/// let ok = checksum.matches("-1234567")
/// ```
public struct Checksum: Sendable {
    /// The variant being computed.
    public let variant: ChecksumVariant
    /// CRC-32: libdeflate's running value (starts at 0). CRC-32C: the pre-inverted register (starts all ones).
    private var state: UInt32

    /// Creates an empty checksum of the given variant.
    public init(_ variant: ChecksumVariant) {
        self.variant = variant
        self.state = variant == .crc32c ? 0xFFFF_FFFF : 0
    }

    /// The checksum of all bytes fed so far, as an unsigned 32-bit value.
    public var value: UInt32 { variant == .crc32c ? ~state : state }

    /// The checksum as NGAS writes it: unsigned decimal.
    public var decimalString: String { String(value) }

    /// Feeds bytes.
    @inline(__always)
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        if variant == .crc32c {
            state = CRC32CTable.shared.update(state, base, bytes.count)
        } else {
            state = libdeflate_crc32(state, base, bytes.count)
        }
    }

    /// Feeds bytes.
    public mutating func update(_ bytes: some Collection<UInt8>) {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ update(UnsafeRawBufferPointer($0)) }) {
            return done
        }
        let copy = Array(bytes)
        copy.withUnsafeBytes { update($0) }
    }

    /// Whether this checksum equals `expected`, an NGAS checksum string (decimal, possibly signed, or `0x` hex).
    public func matches(_ expected: String) -> Bool {
        Checksum.parse(expected) == value
    }

    /// Parses an NGAS checksum string: decimal (signed values are taken `& 0xffffffff`) or `0x`-prefixed hex.
    ///
    /// - Returns: the unsigned value, or `nil` if the string is not a checksum.
    public static func parse(_ text: String) -> UInt32? {
        let trimmed = text.trimmingWhitespace()
        if trimmed.hasPrefix("0x") || trimmed.hasPrefix("0X") {
            return UInt32(trimmed.dropFirst(2), radix: 16)
        }
        guard let number = Int64(trimmed), number >= Int64(Int32.min), number <= Int64(UInt32.max) else { return nil }
        return UInt32(truncatingIfNeeded: number)
    }

    /// Computes the checksum of a whole file, reading it in 1 MiB blocks.
    ///
    /// - Parameters:
    ///   - path: the file to read.
    ///   - variant: the CRC to compute.
    ///   - limit: read at most this many bytes (the prefix of a partial download), or the whole file if `nil`.
    /// - Throws: ``DeliveryError`` with code `fileSystemError` if the file cannot be read.
    public static func ofFile(
        _ path: String, variant: ChecksumVariant, limit: Int64? = nil
    ) throws(DeliveryError)
        -> Checksum
    {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .posix("cannot open", path: path, errno: errno) }
        defer { close(fd) }
        var checksum = Checksum(variant)
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { buffer.deallocate() }
        var remaining = limit ?? Int64.max
        while remaining > 0 {
            let n = read(fd, buffer, Int(min(Int64(size), remaining)))
            if n < 0 {
                if errno == EINTR { continue }
                throw .posix("cannot read", path: path, errno: errno)
            }
            if n == 0 { break }
            checksum.update(UnsafeRawBufferPointer(start: buffer, count: n))
            remaining -= Int64(n)
        }
        return checksum
    }
}

/// Sixteen 256-entry tables for CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-16; allocated
/// once and never mutated. Only for CRC-32C: no library we link provides it.
///
/// `@unchecked Sendable`: the memory is written only in `init` and read-only afterwards.
final class CRC32CTable: @unchecked Sendable {
    static let shared = CRC32CTable(polynomial: 0x82F6_3B78)
    private let t: UnsafeMutablePointer<UInt32>

    private init(polynomial: UInt32) {
        t = .allocate(capacity: 16 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1 }
            t[i] = c
        }
        for k in 1..<16 {
            for i in 0..<256 {
                let previous = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (previous >> 8) ^ t[Int(previous & 0xFF)]
            }
        }
    }

    deinit { t.deallocate() }

    /// Updates a running (pre-inverted) CRC with `count` bytes at `base`.
    @inline(__always)
    func update(_ crcIn: UInt32, _ base: UnsafeRawPointer, _ count: Int) -> UInt32 {
        var crc = crcIn
        var p = base
        var n = count
        let t = self.t
        while n >= 16 {
            let a = p.loadUnaligned(as: UInt64.self).littleEndian ^ UInt64(crc)
            let b = p.loadUnaligned(fromByteOffset: 8, as: UInt64.self).littleEndian
            var r = t[15 * 256 + Int(a & 0xFF)] ^ t[14 * 256 + Int((a >> 8) & 0xFF)]
            r ^= t[13 * 256 + Int((a >> 16) & 0xFF)] ^ t[12 * 256 + Int((a >> 24) & 0xFF)]
            r ^= t[11 * 256 + Int((a >> 32) & 0xFF)] ^ t[10 * 256 + Int((a >> 40) & 0xFF)]
            r ^= t[9 * 256 + Int((a >> 48) & 0xFF)] ^ t[8 * 256 + Int(a >> 56)]
            r ^= t[7 * 256 + Int(b & 0xFF)] ^ t[6 * 256 + Int((b >> 8) & 0xFF)]
            r ^= t[5 * 256 + Int((b >> 16) & 0xFF)] ^ t[4 * 256 + Int((b >> 24) & 0xFF)]
            r ^= t[3 * 256 + Int((b >> 32) & 0xFF)] ^ t[2 * 256 + Int((b >> 40) & 0xFF)]
            r ^= t[1 * 256 + Int((b >> 48) & 0xFF)] ^ t[Int(b >> 56)]
            crc = r
            p += 16
            n -= 16
        }
        while n > 0 {
            crc = (crc >> 8) ^ t[Int((crc ^ UInt32(p.load(as: UInt8.self))) & 0xFF)]
            p += 1
            n -= 1
        }
        return crc
    }
}
