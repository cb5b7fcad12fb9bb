import DropboxTestKit
import Foundation
import Testing

@testable import DropboxAgent

/// The mails' size text, written by hand since the agent left Foundation: it must read as
/// `ByteCountFormatter.string(fromByteCount:countStyle: .binary)` did.
@Suite("Byte count text", .tags(.unit))
struct ByteCountTextTests {
    @Test("agrees with ByteCountFormatter (.binary) from bytes to exbibytes")
    func agreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        var values: [Int64] = [0, 1, 2, 999, 1000, 1023, 1024, 1025, 1536, 2560, 1_048_575, 1_048_576, 1_572_864]
        values += [
            1_073_741_823, 1_073_741_824, 5_000_000_000, 1_099_511_627_776, 1_200_000_000_000_000_000, -5, -2048,
        ]
        for shift in 0..<62 {
            let base = Int64(1) << shift
            values += [base, base + base / 3, base * 3 / 2, base - 1]
            values.append(Int64.random(in: base...(base * 2 - 1), using: &generator))
        }
        for bytes in values {
            #expect(
                ByteCountText.binary(bytes) == ByteCountFormatter.string(fromByteCount: bytes, countStyle: .binary),
                "\(bytes)")
        }
    }
}
