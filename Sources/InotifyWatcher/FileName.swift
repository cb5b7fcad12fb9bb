/// Directory entry names that are not valid UTF-8, carried losslessly in a `String`.
///
/// Linux file names are bytes; a name a `String` cannot hold used to be dropped, so a consumer never saw it (a
/// `*.json` request named in Latin-1 stayed in the spool unanswered). The watcher now reports every name:
/// valid UTF-8 as it is, and each byte of an invalid sequence as one scalar of Supplementary Private Use
/// Area-B, U+10FF00 + byte. ``bytes(of:)`` turns such a name back into the exact bytes on disk; ``isValidUTF8(_:)``
/// tells a consumer the name was not UTF-8.
public enum FileName {
    /// The first scalar of the escape range: U+10FF00 + byte.
    static let escapeBase: UInt32 = 0x10_FF00

    /// `bytes` as a name: valid UTF-8 sequences decoded, every other byte escaped.
    public static func decode<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> String {
        if let valid = String(validating: bytes, as: UTF8.self) { return valid }
        let array = Array(bytes)
        var scalars = String.UnicodeScalarView()
        var offset = 0
        while offset < array.count {
            var parser = Unicode.UTF8.ForwardParser()
            var iterator = array[offset...].makeIterator()
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                scalars.append(Unicode.UTF8.decode(encoded))
                offset += encoded.count
            case .error(let length):
                for byte in array[offset..<(offset + max(1, length))] {
                    scalars.append(Unicode.Scalar(escapeBase + UInt32(byte))!)
                }
                offset += max(1, length)
            case .emptyInput:
                offset = array.count
            }
        }
        return String(scalars)
    }

    /// The bytes on disk of a name reported by the watcher (the inverse of ``decode(_:)``).
    public static func bytes(of name: String) -> [UInt8] {
        var out: [UInt8] = []
        for scalar in name.unicodeScalars {
            if scalar.value >= escapeBase && scalar.value <= escapeBase + 0xFF {
                out.append(UInt8(scalar.value - escapeBase))
            } else {
                out.append(contentsOf: String(scalar).utf8)
            }
        }
        return out
    }

    /// Whether `name` was valid UTF-8 on disk (it holds no escaped byte).
    public static func isValidUTF8(_ name: String) -> Bool {
        !name.unicodeScalars.contains { $0.value >= escapeBase && $0.value <= escapeBase + 0xFF }
    }
}
