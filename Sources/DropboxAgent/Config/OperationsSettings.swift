import FoundationEssentials
import Glibc

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
            throw ConfigurationError(
                path: "$.metrics.textfile",
                message: "must end in .prom (node-exporter's textfile collector reads only *.prom), not \"\(t)\"")
        }
    }
}

/// `dashboard`: the static HTML pages for operators.
struct DashboardSettings: Codable, Sendable {
    /// Write the dashboard at all.
    var enabled = true
    /// The index page (default `<data>/www/index.html`); request pages go to `requests/` beside it.
    var file: String?
    /// How often the pages are rewritten (and the browser reloads them); state changes rewrite them at once.
    var refreshSeconds: Double = 5

    enum CodingKeys: String, CodingKey, CaseIterable { case enabled, file, refreshSeconds }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DashboardSettings()
        enabled = try c.value(.enabled, default: d.enabled)
        file = try c.decodeIfPresent(String.self, forKey: .file)
        refreshSeconds = try c.value(.refreshSeconds, default: d.refreshSeconds)
        if !(refreshSeconds >= 1 && refreshSeconds <= 3600) {
            throw ConfigurationError(
                path: "$.dashboard.refreshSeconds", message: "must be between 1 and 3600, not \(refreshSeconds)")
        }
    }
}
