import Foundation

/// `metrics`: the Prometheus textfile.
struct MetricsSettings: Codable, Sendable {
    /// The Prometheus text file, replaced atomically every few seconds (default `<data>/metrics.prom`); point it
    /// into node-exporter's `--collector.textfile.directory`.
    var textfile: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case textfile }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        textfile = try c.decodeIfPresent(String.self, forKey: .textfile)
        if let t = textfile, !t.hasSuffix(".prom") {
            throw ConfigurationError(path: "$.metrics.textfile", message: "must end in .prom (node-exporter's textfile collector reads only *.prom), not \"\(t)\"")
        }
    }
}
