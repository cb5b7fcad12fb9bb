import Delivery
import Foundation
import Testing
import DropboxTestKit

@Suite("Checksum", .tags(.unit))
struct ChecksumTests {
    @Test(
        "known-answer vectors",
        arguments: [
            (ChecksumVariant.crc32, "123456789", UInt32(0xCBF4_3926)),
            (.crc32c, "123456789", 0xE306_9283),
            (.crc32z, "123456789", 0xCBF4_3926),
            (.crc32, "", 0),
            (.crc32c, "", 0),
            (.crc32, "The quick brown fox jumps over the lazy dog", 0x414F_A339),
            (.crc32c, "The quick brown fox jumps over the lazy dog", 0x2262_0404),
        ])
    func knownAnswers(variant: ChecksumVariant, text: String, expected: UInt32) {
        var checksum = Checksum(variant)
        checksum.update(Array(text.utf8))
        #expect(checksum.value == expected)
    }

    @Test("streaming in odd-sized pieces equals one pass; 32 zero bytes CRC-32C vector")
    func streaming() {
        var zeros = Checksum(.crc32c)
        zeros.update([UInt8](repeating: 0, count: 32))
        #expect(zeros.value == 0x8A91_36AA)  // RFC 3720 B.4
        var ones = Checksum(.crc32c)
        ones.update([UInt8](repeating: 0xFF, count: 32))
        #expect(ones.value == 0x62A8_AB43)
        let bytes = (0..<100_003).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        var whole = Checksum(.crc32)
        whole.update(bytes)
        var pieces = Checksum(.crc32)
        var i = 0
        var step = 1
        while i < bytes.count {
            let end = min(bytes.count, i + step)
            pieces.update(bytes[i..<end])
            i = end
            step = step * 3 % 97 + 1
        }
        #expect(pieces.value == whole.value)
    }

    @Test("NGAS signed values compare & 0xffffffff; junk is rejected")
    func parsing() {
        #expect(Checksum.parse("-1") == 0xFFFF_FFFF)
        #expect(Checksum.parse("4294967295") == 0xFFFF_FFFF)
        #expect(Checksum.parse("-873187034") == UInt32(bitPattern: -873_187_034))
        #expect(Checksum.parse("0xCBF43926") == 0xCBF4_3926)
        #expect(Checksum.parse("4294967296") == nil)
        #expect(Checksum.parse("abc") == nil)
        var c = Checksum(.crc32)
        c.update(Array("123456789".utf8))
        #expect(c.matches("3421780262"))
        #expect(c.matches(String(Int32(bitPattern: 0xCBF4_3926))))
        #expect(!c.matches("3421780263"))
    }

    @Test("ofFile equals in-memory")
    func ofFile() throws {
        let dir = try TemporaryDirectory("crc")
        defer { dir.remove() }
        let data = try writeRandomFile(dir.path + "/f", size: 3 << 20 + 5)
        var memory = Checksum(.crc32c)
        memory.update(data)
        #expect(try Checksum.ofFile(dir.path + "/f", variant: .crc32c).value == memory.value)
        var prefix = Checksum(.crc32c)
        prefix.update(data.prefix(1000))
        #expect(try Checksum.ofFile(dir.path + "/f", variant: .crc32c, limit: 1000).value == prefix.value)
    }
}
