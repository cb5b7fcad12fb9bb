internal import Delivery
public import FoundationEssentials
internal import Glibc

/// The PPR's `RelativePath`: the MOUS directory relative to `SCIPIPE_ROOTDIR`, holding `rawdata/`,
/// `working/` and `products/`.
///
/// Form (the JAO production layout, brief §2):
/// `<PROJECT>_<yyyy_MM_ddTHH_mm_ss.SSS>/SOUS_<uid___…>/GOUS_<uid___…>/MOUS_<uid___…>`, e.g.
/// `2017.1.00886.L_2018_01_22T00_53_28.968/SOUS_uid___A001_X1284_X265c/GOUS_uid___A001_X1284_X265d/MOUS_uid___A001_X1284_X265f`.
/// Every component is built from safe characters only (`[A-Za-z0-9._-]`, never `.`/`..`, never leading
/// `.` or `-`), so it is always relative, never escapes the root, and never looks like a number or boolean
/// to the pipeline's value caster (brief §3.6.2, §3.6.8).
public struct RelativePath: Sendable, Codable, Hashable, CustomStringConvertible {
    /// The path, components separated by `/`.
    public let rawValue: String

    /// Builds the path for a MOUS restored at `time`.
    public init(project: String, sous: AlmaUid, gous: AlmaUid, mous: AlmaUid, time: Date) {
        let stamp = UTCTime(time).description  // 2018-01-22T00:53:28.968Z or …:28Z
        var compact = stamp.dropLast().replacingAll("-", with: "_").replacingAll(":", with: "_")
        if !compact.contains(".") { compact += ".000" }
        rawValue =
            "\(RelativePath.sanitize(project))_\(compact)/SOUS_\(sous.sanitized)/GOUS_\(gous.sanitized)/MOUS_\(mous.sanitized)"
    }

    /// Accepts an existing path if it is safe (relative, safe components); nil otherwise.
    public init?(_ string: String) {
        let components = string.split(separator: "/", omittingEmptySubsequences: false)
        guard !string.isEmpty, string.utf8.count <= 1024,
            components.allSatisfy({ RelativePath.isSafeComponent(String($0)) })
        else { return nil }
        rawValue = string
    }

    /// The path for the MOUS of `plan`.
    public init(plan: RestorePlan, time: Date) {
        self.init(
            project: plan.record.project, sous: plan.record.sous, gous: plan.record.gous, mous: plan.record.mous,
            time: time)
    }

    public var description: String { rawValue }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let path = RelativePath(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a safe relative path: \(text)")
        }
        self = path
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    /// Replaces every character outside `[A-Za-z0-9._-]` by `_` and leading dots/dashes by `_`.
    static func sanitize(_ text: String) -> String {
        var result = String(
            text.unicodeScalars.map { c -> Character in
                isSafe(c) ? Character(c) : "_"
            })
        if result.isEmpty { result = "project" }
        if result.hasPrefix(".") || result.hasPrefix("-") { result = "_" + result.dropFirst() }
        return result
    }

    static func isSafeComponent(_ component: String) -> Bool {
        guard let first = component.unicodeScalars.first, first != ".", first != "-", component.utf8.count <= 255 else {
            return false
        }
        return component.unicodeScalars.allSatisfy(isSafe)
    }

    private static func isSafe(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "." || c == "_"
            || c == "-"
    }
}
