internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// An ALMA archive uid such as `uid://A002/Xc7111c/X3979`, validated.
///
/// Syntax accepted: `uid://<archive>/X<hex>/X<hex>` where `<archive>` is a letter followed by letters or
/// digits (`A001`, `A002`, …) and each part is `X` followed by 1–16 hexadecimal digits; at most 64 characters.
/// Anything else is refused, which keeps uids safe to turn into file names: a valid uid can contain no `.`,
/// no whitespace, no `..` component and no path separator other than the three fixed `/`.
public struct AlmaUid: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The canonical form, `uid://A002/Xc7111c/X3979`.
    public let rawValue: String

    /// Validates `string` as a uid in `uid://…` form; nil if it is not one.
    public init?(_ string: String) {
        guard let parts = AlmaUid.parts(ofURIForm: string) else { return nil }
        self.rawValue = "uid://\(parts.0)/\(parts.1)/\(parts.2)"
    }

    /// Accepts either the `uid://A002/X1/X2` form or the sanitized `uid___A002_X1_X2` form.
    public init?(lenient string: String) {
        if let uid = AlmaUid(string) {
            self = uid
            return
        }
        guard let disk = AsdmDiskName(string) else { return nil }
        self = disk.uid
    }

    /// The uid as a file-name-safe string: `uid___A002_Xc7111c_X3979` (the pipeline's `get_oussid` rule:
    /// `:` and `/` become `_`).
    public var sanitized: String {
        rawValue.replacingAll(":", with: "_").replacingAll("/", with: "_")
    }

    public var description: String { rawValue }
    public static func < (lhs: AlmaUid, rhs: AlmaUid) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        guard let uid = AlmaUid(string) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not an ALMA uid (uid://A001/X1/X2): \(string)")
        }
        self = uid
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static let maximumLength = 64

    /// Splits `uid://A/Xn/Xm` into its three parts after validating each.
    private static func parts(ofURIForm string: String) -> (String, String, String)? {
        guard string.utf8.count <= maximumLength, string.hasPrefix("uid://") else { return nil }
        let components = string.dropFirst("uid://".count).split(separator: "/", omittingEmptySubsequences: false)
        guard components.count == 3 else { return nil }
        return validated(components.map(String.init))
    }

    /// Validates archive id and the two `X<hex>` parts.
    static func validated(_ components: [String]) -> (String, String, String)? {
        guard components.count == 3, isArchiveId(components[0]), isHexPart(components[1]), isHexPart(components[2])
        else { return nil }
        return (components[0], components[1], components[2])
    }

    /// A letter and hexadecimal digits (`A001`, `A002`), as the request schema says.
    private static func isArchiveId(_ s: String) -> Bool {
        let scalars = Array(s.unicodeScalars)
        guard scalars.count >= 2, scalars.count <= 16, isASCIILetter(scalars[0]) else { return false }
        return scalars.dropFirst().allSatisfy {
            ("0"..."9").contains($0) || ("a"..."f").contains($0) || ("A"..."F").contains($0)
        }
    }

    private static func isHexPart(_ s: String) -> Bool {
        let scalars = Array(s.unicodeScalars)
        guard scalars.count >= 2, scalars.count <= 17, scalars[0] == "X" else { return false }
        return scalars.dropFirst().allSatisfy {
            ("0"..."9").contains($0) || ("a"..."f").contains($0) || ("A"..."F").contains($0)
        }
    }

    private static func isASCIILetter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c)
    }
}

/// The directory (and MS base) name of an execution block's ASDM: `uid___A002_Xc7111c_X3979`.
///
/// It is the EB uid with `uid://` → `uid___` and `/` → `_`, with no extension (a `.asdm.sdm` suffix would
/// stop the pipeline's session matching, brief §3.6.7). It must equal the directory under `rawdata/`.
public struct AsdmDiskName: Sendable, Hashable, Codable, Comparable, CustomStringConvertible {
    /// The EB uid it names.
    public let uid: AlmaUid

    /// The disk name of `uid`.
    public init(_ uid: AlmaUid) { self.uid = uid }

    /// Parses a disk name (`uid___A002_X1_X2`); nil unless it is exactly a sanitized valid uid.
    public init?(_ string: String) {
        guard string.utf8.count <= AlmaUid.maximumLength, string.hasPrefix("uid___") else { return nil }
        let components = string.dropFirst("uid___".count).split(separator: "_", omittingEmptySubsequences: false).map(
            String.init)
        guard let parts = AlmaUid.validated(components), let uid = AlmaUid("uid://\(parts.0)/\(parts.1)/\(parts.2)")
        else { return nil }
        self.uid = uid
    }

    /// `uid___A002_Xc7111c_X3979`.
    public var rawValue: String { uid.sanitized }
    /// The measurement set the pipeline writes for it, `uid___A002_Xc7111c_X3979.ms` (the manifest's `asdm@name`).
    public var msName: String { rawValue + ".ms" }
    public var description: String { rawValue }
    public static func < (lhs: AsdmDiskName, rhs: AsdmDiskName) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        guard let name = AsdmDiskName(string) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "not an ASDM disk name (uid___A002_X1_X2): \(string)")
        }
        self = name
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}
