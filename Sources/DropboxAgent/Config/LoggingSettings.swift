import FoundationEssentials
import Glibc

/// `logging`.
struct LoggingSettings: Codable, Sendable {
    /// `trace`, `debug`, `info` (default), `notice`, `warning`, `error`.
    var level: String = "info"
    /// `json` (one object per line, default) or `text`.
    var format: String = "json"

    enum CodingKeys: String, CodingKey, CaseIterable { case level, format }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        level = try c.value(.level, default: "info")
        format = try c.value(.format, default: "json")
    }
}
