internal import FoundationEssentials
internal import Glibc

/// RFC 2047 encoded words, quoted-printable and header folding.
enum MailEncoding {
    /// One or more `=?utf-8?b?…?=` words (each ≤ 64 characters, split at character boundaries), space-separated.
    static func encodedWord(_ text: String) -> String {
        encodedWords(text).joined(separator: " ")
    }

    static func encodedWords(_ text: String) -> [String] {
        var words: [String] = []
        var chunk: [UInt8] = []
        for character in text {
            let bytes = Array(String(character).utf8)
            if chunk.count + bytes.count > 39 {
                words.append("=?utf-8?b?" + Data(chunk).base64EncodedString() + "?=")
                chunk = []
            }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { words.append("=?utf-8?b?" + Data(chunk).base64EncodedString() + "?=") }
        return words
    }

    /// `Name: value`, folded with CRLF + space before 78 columns where `value` has spaces.
    static func header(_ name: String, _ value: String) -> String {
        var lines: [String] = []
        var current = name + ":"
        for word in value.split(separator: " ", omittingEmptySubsequences: false) {
            if current.count + 1 + word.count > 78 && current.count > name.count + 1 {
                lines.append(current)
                current = ""
            }
            current += " " + word
        }
        lines.append(current)
        return lines.joined(separator: "\r\n")
    }

    /// Quoted-printable (RFC 2045) of UTF-8 text whose lines are already split; soft breaks at 76 columns.
    static func quotedPrintable(lines: [String]) -> String {
        var out: [String] = []
        for line in lines {
            var encoded = ""
            var column = 0
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                var piece: String
                if (byte == 0x20 || byte == 0x09) && !isLast {
                    piece = String(UnicodeScalar(byte))
                } else if byte >= 33 && byte <= 126 && byte != 61 {
                    piece = String(UnicodeScalar(byte))
                } else {
                    piece = "=" + TextEssentials.hex(byte)
                }
                if column + piece.count > 75 {
                    encoded += "=\r\n"
                    column = 0
                }
                encoded += piece
                column += piece.count
            }
            out.append(encoded)
        }
        return out.joined(separator: "\r\n")
    }
}
