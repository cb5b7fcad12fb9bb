import Foundation
import Logging
import DropboxTestKit
import Testing

@testable import DropboxAgent

@Suite("Log line and timestamp encoding", .tags(.unit))
struct LogLineEncodingTests {
    @Test("Timestamp.string writes RFC 3339 UTC with milliseconds, zero-padded, and parses back")
    func timestamp() throws {
        let date = Date(timeIntervalSince1970: 1_767_225_600.042)  // 2026-01-01T00:00:00.042Z
        let text = Timestamp.string(date)
        #expect(text == "2026-01-01T00:00:00.042Z")
        let later = Date(timeIntervalSince1970: 1_796_083_199.5)
        #expect(Timestamp.string(later) == "2026-11-30T23:59:59.500Z")
        let parsed = try #require(Timestamp.date(text))
        #expect(abs(parsed.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.001)
    }

    @Test("JSON string literals escape quotes, backslashes and control characters and parse back unchanged")
    func strings() throws {
        let samples = ["plain", "quote \" and \\ backslash", "line\nbreak\ttab\r", "bell \u{07} nul \u{00}", "ü/€ 🚀"]
        for sample in samples {
            var literal = ""
            JSONLogHandler.appendString(sample, to: &literal)
            let decoded = try JSONSerialization.jsonObject(with: Data("[\(literal)]".utf8)) as? [String]
            #expect(decoded == [sample], "\(literal)")
            #expect(!literal.utf8.dropFirst().dropLast().contains { $0 < 0x20 })
        }
    }
}
