import FoundationEssentials
import Glibc
import RestoreSteps

/// `delivery`: where measurement sets go.
struct DeliverySettings: Codable, Sendable {
    /// The download area (default `<data>/downloads`); one directory per request.
    var directory: String?
    /// URL under which the download area is served (`https://host/downloads`); default: `file://` URLs.
    var baseURL: String?
    /// `ms` (directory) or `tar`, unless the request says otherwise.
    var defaultFormat: RestoreRequest.DeliveryFormat = .ms
    /// When working areas are removed: `never`, `onSuccess` (default: failures are kept for inspection), `always`.
    var cleanWorkingArea: String = "onSuccess"
    /// Numeric group id or name for delivered files; default: the agent's group.
    var group: String?
    /// Mode of a delivery's directories (octal string): default 0755, so a web server's own user can serve them.
    /// The download area itself is created 0711 (reachable, not listable), and every delivery has a random name.
    var directoryMode: String = "0755"
    /// Mode of delivered files (octal string), default 0644.
    var fileMode: String = "0644"
    /// Days a delivery stays in the download area before the agent removes it (default 14; 0 keeps it for ever).
    var retentionDays: Double = 14
    /// Bound of the restore cache that later requests for the same inputs reuse (bytes; 0 disables reuse).
    var reuseMaxBytes: Int64 = 100 * (1 << 30)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case directory, baseURL, defaultFormat, cleanWorkingArea, group, directoryMode, fileMode, retentionDays,
            reuseMaxBytes
    }
    init() {}
    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DeliverySettings()
        directory = try c.decodeIfPresent(String.self, forKey: .directory)
        baseURL = try c.decodeIfPresent(String.self, forKey: .baseURL)
        defaultFormat = try c.value(.defaultFormat, default: d.defaultFormat)
        cleanWorkingArea = try c.value(.cleanWorkingArea, default: d.cleanWorkingArea)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        directoryMode = try c.value(.directoryMode, default: d.directoryMode)
        fileMode = try c.value(.fileMode, default: d.fileMode)
        retentionDays = try c.value(.retentionDays, default: d.retentionDays)
        reuseMaxBytes = try c.value(.reuseMaxBytes, default: d.reuseMaxBytes)
    }

    /// `delivery.retentionDays` in seconds; nil: kept for ever.
    var retentionSeconds: Double? { retentionDays > 0 ? retentionDays * 86400 : nil }
}
