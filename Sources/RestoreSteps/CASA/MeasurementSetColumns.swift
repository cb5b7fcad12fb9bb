internal import FoundationEssentials
internal import Glibc

/// Reads the column names of a casacore table from its `table.dat`, without casacore.
///
/// Method: `table.dat` is an AipsIO stream (it starts with the magic `0xBEBEBEBE`). Its table description holds one
/// object per column, written as the class name (`ArrayColumnDesc<Complex >`, `ScalarColumnDesc<Int     >`,
/// `ScalarRecordColumnDesc`, …) as an AipsIO string — a 4-byte length then the characters — followed by a 4-byte
/// version and the column name as another AipsIO string. We find every class name containing `ColumnDesc`, check
/// its length prefix (big-endian, the canonical AipsIO order, or little-endian for tables written in local order),
/// and read the name that follows. Only names found this way count: `CORRECTED_DATA` also appears elsewhere in the
/// file (hypercolumn definitions keep it after the column was removed, as a real MS from casatools shows), so a
/// plain text search would be wrong.
///
/// Limits: it proves the column is *declared*, not that its data files are intact or that the data were actually
/// calibrated (a column filled with a copy of DATA still passes). A reference table (`RefTable`) lists its parent's
/// columns the same way. A damaged or truncated `table.dat` yields whatever names parse before the damage.
public enum MeasurementSetColumns {
    /// The column names declared in `<tableDirectory>/table.dat`, or nil when there is no readable `table.dat` or
    /// it is not an AipsIO file.
    public static func columns(ofTableAt tableDirectory: String) -> Set<String>? {
        let path = tableDirectory.hasSuffix("/") ? tableDirectory + "table.dat" : tableDirectory + "/table.dat"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return columns(inTableDat: [UInt8](data))
    }

    /// The column names declared in the bytes of a `table.dat`; nil if the bytes are not an AipsIO stream.
    public static func columns(inTableDat bytes: [UInt8]) -> Set<String>? {
        guard bytes.count >= 4, bytes[0..<4].allSatisfy({ $0 == 0xBE }) else { return nil }
        let marker = Array("ColumnDesc".utf8)
        var names: Set<String> = []
        var i = 0
        while let hit = find(marker, in: bytes, from: i) {
            i = hit + marker.count
            // The class name starts at the first letter of the identifier that ends in "ColumnDesc".
            var start = hit
            while start > 0, isLetter(bytes[start - 1]) { start -= 1 }
            guard start >= 4 else { continue }
            for bigEndian in [true, false] {
                let classLength = readUInt32(bytes, at: start - 4, bigEndian: bigEndian)
                guard let classLength, classLength >= UInt32(hit + marker.count - start), classLength <= 128 else {
                    continue
                }
                let afterClass = start + Int(classLength)
                guard let nameLength = readUInt32(bytes, at: afterClass + 4, bigEndian: bigEndian),
                    nameLength > 0, nameLength <= 256, afterClass + 8 + Int(nameLength) <= bytes.count
                else { continue }
                let nameBytes = bytes[(afterClass + 8)..<(afterClass + 8 + Int(nameLength))]
                guard nameBytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { continue }
                names.insert(String(decoding: nameBytes, as: UTF8.self))
                break
            }
        }
        return names
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }

    private static func readUInt32(_ bytes: [UInt8], at offset: Int, bigEndian: Bool) -> UInt32? {
        guard offset >= 0, offset + 4 <= bytes.count else { return nil }
        let b = bytes[offset..<(offset + 4)].map(UInt32.init)
        return bigEndian ? (b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) : (b[3] << 24 | b[2] << 16 | b[1] << 8 | b[0])
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard needle.count <= haystack.count, start <= haystack.count - needle.count else { return nil }
        var i = start
        let first = needle[0]
        while i <= haystack.count - needle.count {
            if haystack[i] == first && haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }
}
