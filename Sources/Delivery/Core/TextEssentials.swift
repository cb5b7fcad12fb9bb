internal import Glibc

/// String operations the agent used from full Foundation (`trimmingCharacters(in:)`, `replacingOccurrences`,
/// `String(format:)`, percent-encoding), written on the standard library so that no module needs Foundation's
/// `NSString` layer or ICU.
extension StringProtocol {
    /// Without leading and trailing blanks: tab, the Unicode space separators and U+200B (Foundation's
    /// `CharacterSet.whitespaces`).
    public func trimmingWhitespace() -> String { trimmingScalars(where: TextEssentials.isBlank) }

    /// Without leading and trailing blanks and line breaks (Foundation's `CharacterSet.whitespacesAndNewlines`:
    /// tab, U+000A…U+000D, U+0085 and the Unicode separators Z*).
    public func trimmingWhitespaceAndNewlines() -> String {
        trimmingScalars(where: TextEssentials.isBlankOrNewline)
    }

    /// Every occurrence of `target` replaced by `replacement`, matched on Unicode scalars (as Foundation's literal
    /// `replacingOccurrences(of:with:)`: `"\r"` matches inside `"\r\n"`), left to right, without overlaps.
    public func replacingAll(_ target: String, with replacement: String) -> String {
        let haystack = Array(utf8)
        let needle = Array(target.utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return String(self) }
        var out: [UInt8] = []
        out.reserveCapacity(haystack.count)
        var i = 0
        var found = false
        while i < haystack.count {
            if haystack[i] == needle[0], i + needle.count <= haystack.count,
                haystack[i..<(i + needle.count)].elementsEqual(needle)
            {
                out.append(contentsOf: replacement.utf8)
                i += needle.count
                found = true
            } else {
                out.append(haystack[i])
                i += 1
            }
        }
        return found ? String(decoding: out, as: UTF8.self) : String(self)
    }

    /// Without the leading and trailing Unicode scalars for which `drop` is true.
    public func trimmingScalars(where drop: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !drop($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !drop($0) })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}

/// Number and byte formatting (`String(format:)` without Foundation) and percent-encoding.
public enum TextEssentials {
    /// Whether `scalar` is a tab, a Unicode space separator (Zs) or U+200B ZERO WIDTH SPACE (which Foundation's
    /// `CharacterSet.whitespaces` counts too).
    public static func isBlank(_ scalar: Unicode.Scalar) -> Bool {
        scalar == "\t" || scalar.value == 0x200B || scalar.properties.generalCategory == .spaceSeparator
    }

    /// Whether `scalar` is a blank, a line break (U+000A…U+000D, U+0085) or a line/paragraph separator.
    public static func isBlankOrNewline(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x85, 0x200B: return true
        default:
            switch scalar.properties.generalCategory {
            case .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
            default: return false
            }
        }
    }

    /// Two upper-case hexadecimal digits (`String(format: "%02X", byte)`).
    public static func hex(_ byte: UInt8) -> String {
        let digits: [UInt8] = Array("0123456789ABCDEF".utf8)
        return String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]], as: UTF8.self)
    }

    /// `value` with `fractionDigits` digits after the point, right-aligned in `width` characters: what
    /// `String(format: "%<width>.<fractionDigits>f", value)` printed (the C library's rounding, to the digit).
    public static func fixed(_ value: Double, fractionDigits: Int, width: Int = 0) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = withVaList([Int32(width), Int32(fractionDigits), value]) { arguments in
            vsnprintf(&buffer, buffer.count, "%*.*f", arguments)
        }
        if count >= buffer.count {  // a huge value: print again with room for every digit
            buffer = [CChar](repeating: 0, count: Int(count) + 1)
            _ = withVaList([Int32(width), Int32(fractionDigits), value]) { arguments in
                vsnprintf(&buffer, buffer.count, "%*.*f", arguments)
            }
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The bytes Foundation's `CharacterSet.urlPathAllowed` leaves unescaped: ASCII letters and digits and
    /// `-._~!$&'()*+,=@/` (not `:` or `;`).
    public static func isURLPathAllowed(_ byte: UInt8) -> Bool {
        isASCIIAlphanumeric(byte) || Array("-._~!$&'()*+,=@/".utf8).contains(byte)
    }

    /// Whether `byte` is an ASCII letter or digit.
    public static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }

    /// `text` with every UTF-8 byte for which `allowed` is false written as `%XX` (upper-case hex), as Foundation's
    /// `addingPercentEncoding(withAllowedCharacters:)` does for an ASCII-only allowed set.
    public static func percentEncoded(_ text: String, allowed: (UInt8) -> Bool) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if allowed(byte) {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%" + hex(byte)
            }
        }
        return out
    }

    /// `text` with every `%XX` decoded; nil when a `%` is not followed by two hex digits or the bytes are not
    /// UTF-8 (as Foundation's `removingPercentEncoding`).
    public static func percentDecoded(_ text: String) -> String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        func digit(_ byte: UInt8?) -> UInt8? {
            switch byte {
            case .some(let b) where (0x30...0x39).contains(b): b - 0x30
            case .some(let b) where (0x41...0x46).contains(b): b - 0x41 + 10
            case .some(let b) where (0x61...0x66).contains(b): b - 0x61 + 10
            default: nil
            }
        }
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = digit(iterator.next()), let low = digit(iterator.next()) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}
