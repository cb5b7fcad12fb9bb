internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// Finds SEVERE lines in CASA logs, reading the file in chunks (logs can be very large).
///
/// A CASA log line is tab-separated: `date time<TAB>PRIORITY<TAB>origin<TAB>message`; continuation lines have the
/// origin suffixed with `+`. Lines whose priority is `SEVERE` count unless ``HarmlessSevere`` says otherwise. The
/// console form with spaces instead of tabs (`2024-01-01 00:00:00 SEVERE origin message`, as some CASA versions
/// print to the terminal) is recognised too.
public enum CASALogScanner {
    /// One SEVERE line.
    public struct SevereLine: Sendable, Hashable {
        /// The log file.
        public var file: String
        /// 1-based line number.
        public var lineNumber: Int
        /// The whole line.
        public var line: String
        /// The origin field (without the continuation `+`).
        public var origin: String
        /// The message field.
        public var message: String
    }

    /// What a scan found.
    public struct Findings: Sendable, Hashable {
        /// SEVERE lines that are not known-harmless, in file order (at most ``maximumKept``).
        public var decisive: [SevereLine] = []
        /// How many known-harmless SEVERE lines were skipped.
        public var harmlessCount = 0
        /// How many decisive lines there were in all.
        public var decisiveCount = 0
        /// How many decisive lines are kept.
        public static let maximumKept = 20
    }

    /// Scans the files in order; unreadable or missing files are skipped.
    public static func scan(_ files: [String]) -> Findings {
        var findings = Findings()
        for file in files { scan(file, into: &findings) }
        return findings
    }

    /// The SEVERE line's origin and message, or nil if `line` is not a SEVERE log line.
    static func parseSevere(_ line: Substring) -> (origin: String, isContinuation: Bool, message: String)? {
        guard line.contains("SEVERE") else { return nil }
        let tabFields = line.split(separator: "\t", maxSplits: 3, omittingEmptySubsequences: false)
        if tabFields.count >= 3, tabFields[1].trimmingWhitespace() == "SEVERE",
            looksLikeTimestamp(tabFields[0])
        {
            let origin = tabFields[2]
            let message = tabFields.count == 4 ? String(tabFields[3]) : ""
            return origin.hasSuffix("+")
                ? (String(origin.dropLast()), true, message) : (String(origin), false, message)
        }
        let words = line.split(separator: " ", maxSplits: 4, omittingEmptySubsequences: true)
        if words.count >= 4, words[2] == "SEVERE", looksLikeTimestamp(words[0] + " " + words[1]) {
            let origin = words[3]
            let message = words.count == 5 ? String(words[4]) : ""
            return origin.hasSuffix("+")
                ? (String(origin.dropLast()), true, message) : (String(origin), false, message)
        }
        return nil
    }

    /// `YYYY-MM-DD HH:MM:SS` at the start (fractional seconds allowed).
    private static func looksLikeTimestamp(_ text: some StringProtocol) -> Bool {
        let chars = Array(text.utf8.prefix(19))
        guard chars.count == 19 else { return false }
        let digitPositions = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
        return digitPositions.allSatisfy { chars[$0] >= 0x30 && chars[$0] <= 0x39 }
            && chars[4] == 0x2D && chars[7] == 0x2D && (chars[10] == 0x20 || chars[10] == 0x54) && chars[13] == 0x3A
            && chars[16] == 0x3A
    }

    private static func scan(_ file: String, into findings: inout Findings) {
        guard let reader = FileReader(path: file) else { return }
        var offset: UInt64 = 0
        var pending: [UInt8] = []
        var lineNumber = 0
        // Whether the last SEVERE head line, per origin, was harmless (continuations inherit it).
        var lastHeadHarmless: [String: Bool] = [:]
        func inspect(_ bytes: ArraySlice<UInt8>) {
            lineNumber += 1
            // Cheap pre-filter before decoding.
            guard bytes.count >= 6, contains(bytes, severeBytes) else { return }
            let line = String(decoding: bytes, as: UTF8.self)
            guard let severe = parseSevere(Substring(line)) else { return }
            let harmless: Bool
            if severe.isContinuation, let head = lastHeadHarmless[severe.origin] {
                harmless = head || HarmlessSevere.isHarmless(severe.message)
            } else {
                harmless = HarmlessSevere.isHarmless(severe.message)
                lastHeadHarmless[severe.origin] = harmless
            }
            if harmless {
                findings.harmlessCount += 1
            } else {
                findings.decisiveCount += 1
                if findings.decisive.count < Findings.maximumKept {
                    findings.decisive.append(
                        SevereLine(
                            file: file, lineNumber: lineNumber, line: line, origin: severe.origin,
                            message: severe.message))
                }
            }
        }
        while true {
            guard let chunk = reader.read(at: offset, upTo: 1 << 20), !chunk.isEmpty else { break }
            offset += UInt64(chunk.count)
            pending.append(contentsOf: chunk)
            var start = pending.startIndex
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                inspect(pending[start..<newline])
                start = newline + 1
            }
            pending.removeSubrange(pending.startIndex..<start)
        }
        if !pending.isEmpty { inspect(pending[...]) }
    }

    private static let severeBytes = Array("SEVERE".utf8)

    private static func contains(_ bytes: ArraySlice<UInt8>, _ needle: [UInt8]) -> Bool {
        guard bytes.count >= needle.count else { return false }
        var i = bytes.startIndex
        while i <= bytes.endIndex - needle.count {
            if bytes[i] == needle[0] && bytes[i..<(i + needle.count)].elementsEqual(needle) { return true }
            i += 1
        }
        return false
    }
}
