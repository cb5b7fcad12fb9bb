internal import Delivery
internal import FoundationEssentials
internal import Glibc

/// A CASA version as ALMA writes it: `6.5.4.9` (manifests, PyPI wheels), `6.5.4-9` and `5.1.1-5` (monolithic
/// tarballs), `6.7.0.31`.
///
/// Parsed into its numeric components; `.` and `-` (and any other non-alphanumeric character) separate them, so
/// `6.5.4-9` and `6.5.4.9` are the same version. Ordering is by component, a missing component counting as 0
/// (`6.5` == `6.5.0.0` < `6.5.4.9` < `6.7.0.31`); a non-numeric component (`6.7.0.31a`) makes the string
/// unparseable, since CASA never publishes one and guessing its order would be worse than refusing.
public struct CASAVersion: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    /// The numeric components, e.g. `[6, 5, 4, 9]`.
    public let components: [Int]

    /// Parses `text`; nil when it has no component or a component that is not a decimal number.
    public init?(_ text: String) {
        let parts = text.trimmingWhitespace()
            .split(whereSeparator: { !($0.isLetter || $0.isNumber) })
        guard !parts.isEmpty else { return nil }
        var numbers: [Int] = []
        for part in parts {
            guard part.allSatisfy(\.isASCII), let n = Int(part), n >= 0 else { return nil }
            numbers.append(n)
        }
        components = numbers
    }

    /// The components with trailing zeros removed, so that `6.5` and `6.5.0` compare equal.
    private var significant: ArraySlice<Int> {
        var end = components.count
        while end > 0 && components[end - 1] == 0 { end -= 1 }
        return components[..<end]
    }

    public var major: Int { components[0] }
    public var minor: Int { components.count > 1 ? components[1] : 0 }

    /// Same major and minor version (`6.5.4.9` and `6.5.6.22`).
    public func hasSameMinor(as other: CASAVersion) -> Bool { major == other.major && minor == other.minor }

    public static func == (a: CASAVersion, b: CASAVersion) -> Bool { a.significant == b.significant }
    public func hash(into hasher: inout Hasher) { hasher.combine(Array(significant)) }

    public static func < (a: CASAVersion, b: CASAVersion) -> Bool {
        let n = max(a.components.count, b.components.count)
        for i in 0..<n {
            let x = i < a.components.count ? a.components[i] : 0
            let y = i < b.components.count ? b.components[i] : 0
            if x != y { return x < y }
        }
        return false
    }

    /// Dotted form: `6.5.4.9`.
    public var description: String { components.map(String.init).joined(separator: ".") }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let parsed = CASAVersion(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a CASA version: \(text)"))
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// `casa.versionPolicy`: which CASA may restore tables made by another (the manifest's `casaversion`).
///
/// Pipeline-calibrated data tolerate a later CASA (the calibration tables and flag versions are read, not
/// recomputed), hence the default ``newerAllowed``. A site that must reproduce the archive's own restore exactly
/// chooses ``exact``.
public enum CASAVersionPolicy: String, Sendable, Codable, Hashable, CaseIterable {
    /// Only an installation of the manifest's version (`6.5.4-9` matches `6.5.4.9`).
    case exact
    /// An installation of the same major.minor version (`6.5.x`).
    case sameMinor
    /// The manifest's version or any later one (the default).
    case newerAllowed
    /// Any installation.
    case any

    /// The default policy.
    public static let `default` = CASAVersionPolicy.newerAllowed

    /// Whether an installation of `installed` may restore tables made with `manifest`.
    public func allows(installed: CASAVersion, manifest: CASAVersion) -> Bool {
        switch self {
        case .exact: installed == manifest
        case .sameMinor: installed.hasSameMinor(as: manifest)
        case .newerAllowed: installed >= manifest
        case .any: true
        }
    }

    /// What the policy asks for, in words: "CASA 6.5.4.9 exactly", "CASA 6.5.x", "CASA 6.5.4.9 or later".
    public func requirement(for manifest: CASAVersion) -> String {
        switch self {
        case .exact: "CASA \(manifest) exactly"
        case .sameMinor: "CASA \(manifest.major).\(manifest.minor).x"
        case .newerAllowed: "CASA \(manifest) or later"
        case .any: "any CASA"
        }
    }
}
