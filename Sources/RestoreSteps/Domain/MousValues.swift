internal import FoundationEssentials
internal import Glibc
internal import Delivery

/// A file in the archive store: NGAS file id, size and checksum.
public struct ArchiveFile: Sendable, Codable, Hashable {
    /// The NGAS file id, also the local file name (validated safe: see ``ArchiveFile/isSafeFileId(_:)``).
    public var ngasFileId: String
    /// Size in bytes.
    public var size: Int64
    /// The NGAS checksum as a decimal string (CRC; `crc32` may be stored signed).
    public var checksum: String?
    /// The checksum variant.
    public var checksumVariant: ArchiveChecksumVariant?

    public init(ngasFileId: String, size: Int64, checksum: String?, checksumVariant: ArchiveChecksumVariant?) {
        self.ngasFileId = ngasFileId
        self.size = size
        self.checksum = checksum
        self.checksumVariant = checksumVariant
    }

    /// Whether `id` is safe as a flat file name: Delivery's rule for a name that denotes one file and is
    /// neither hidden nor an option (``PlainFileName/isOrdinary(_:)``, which is also what every archive store
    /// checks before a transfer), restricted to NGAS's own characters `[A-Za-z0-9._+-]`.
    public static func isSafeFileId(_ id: String) -> Bool {
        PlainFileName.isOrdinary(id)
            && id.unicodeScalars.allSatisfy { c in
                ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_"
                    || c == "-" || c == "+"
            }
    }
}

/// NGAS checksum variants (INTERFACES.md §1).
///
/// Same raw values as Delivery's `ChecksumVariant` (convert with `ChecksumVariant(rawValue: v.rawValue)`).
/// A separate type because Delivery's is not on this branch; named differently so that a module importing
/// both RestoreSteps and Delivery sees no ambiguity. The lead may replace it with a typealias after merging.
public enum ArchiveChecksumVariant: String, Sendable, Codable, Hashable, CaseIterable {
    /// zlib crc32, possibly stored signed (compare `& 0xffffffff`).
    case crc32
    /// CRC-32C (Castagnoli).
    case crc32c
    /// zlib crc32, unsigned.
    case crc32z
}

/// `ASA_PRODUCT_FILES.FILE_CLASS`.
public enum FileClass: String, Sendable, Codable, Hashable, CaseIterable {
    case calibration, script, science, qa, log, auxiliary
}

/// QA0 status of an execution block.
public enum QA0Status: String, Sendable, Codable, Hashable, CaseIterable {
    case pass = "Pass"
    case semiPass = "SemiPass"
    case fail = "Fail"
    case unset = "Unset"
    case pending = "Pending"

    /// Reads the values ALMA tables hold, leniently: case-insensitive, and `Pending…`/`Pass…` prefixes as the
    /// shiftlog's `SE_QA0FLAG LIKE 'Pass%'` queries do. `SemiPass` is tested before `Pass`.
    public init?(lenient text: String) {
        let lower = text.trimmingWhitespace().lowercased()
        if lower.hasPrefix("semipass") {
            self = .semiPass
        } else if lower.hasPrefix("pass") {
            self = .pass
        } else if lower.hasPrefix("fail") {
            self = .fail
        } else if lower.hasPrefix("unset") {
            self = .unset
        } else if lower.hasPrefix("pending") {
            self = .pending
        } else {
            return nil
        }
    }
}
