import Foundation
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
    /// Numeric group id or name for delivered files (group-readable); default: the agent's group.
    var group: String?

    enum CodingKeys: String, CodingKey, CaseIterable { case directory, baseURL, defaultFormat, cleanWorkingArea, group }
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
    }
}
