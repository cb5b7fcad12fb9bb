import FoundationEssentials
import Glibc

/// `catalogue`: the metadata source.
struct CatalogueSettings: Codable, Sendable {
    /// The embedded SQLite catalogue (default `<data>/catalogue.sqlite`).
    var sqlite: String?
    /// Restore MOUSes whose release date is in the future.
    var allowProprietary: Bool = false

    enum CodingKeys: String, CodingKey, CaseIterable { case sqlite, allowProprietary }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        sqlite = try c.decodeIfPresent(String.self, forKey: .sqlite)
        allowProprietary = try c.value(.allowProprietary, default: false)
    }
}
