internal import Foundation

/// Structural checks of the raw JSON that `Codable` cannot do: unknown (misspelled) fields, and turning a
/// `DecodingError` into a problem with a JSON path.
enum CatalogueFieldCheck {
    /// Known field names per object kind.
    static let fileKeys: Set<String> = ["schema", "mouses"]
    static let mousKeys: Set<String> = [
        "mous", "project", "obsProject", "projectStatus", "obsUnitSetPartId", "sous", "gous", "title", "releaseDate",
        "schedBlock", "sessions", "execBlocks", "products", "ousStatusXml", "otherSchedBlocks",
    ]
    static let schedBlockKeys: Set<String> = ["uid", "name", "statusUid", "state"]
    static let sessionKeys: Set<String> = ["id", "startTime", "endTime"]
    static let execBlockKeys: Set<String> = ["uid", "qa0", "sessionId", "startTime", "endTime", "asdm"]
    static let fileObjectKeys: Set<String> = ["ngasFileId", "size", "checksum", "checksumVariant"]
    static let productKeys: Set<String> = ["fileClass", "ngasFileId", "size", "checksum", "checksumVariant"]

    /// Every field not in the format, with its path. A misspelled optional field would otherwise be ignored.
    static func unknownFields(in json: Any) -> [CatalogueImportError.Problem] {
        var problems: [CatalogueImportError.Problem] = []
        func check(_ value: Any, _ keys: Set<String>, _ path: String) {
            guard let object = value as? [String: Any] else { return }
            for key in object.keys.sorted() where !keys.contains(key) {
                problems.append(
                    .init(
                        path: "\(path).\(key)",
                        message: "unknown field (allowed: \(keys.sorted().joined(separator: ", ")))"))
            }
        }
        check(json, fileKeys, "$")
        guard let root = json as? [String: Any], let mouses = root["mouses"] as? [Any] else { return problems }
        for (i, mous) in mouses.enumerated() {
            let path = "$.mouses[\(i)]"
            check(mous, mousKeys, path)
            guard let object = mous as? [String: Any] else { continue }
            if let sb = object["schedBlock"] { check(sb, schedBlockKeys, "\(path).schedBlock") }
            for (j, sb) in (object["otherSchedBlocks"] as? [Any] ?? []).enumerated() {
                check(sb, schedBlockKeys, "\(path).otherSchedBlocks[\(j)]")
            }
            for (j, session) in (object["sessions"] as? [Any] ?? []).enumerated() {
                check(session, sessionKeys, "\(path).sessions[\(j)]")
            }
            for (j, eb) in (object["execBlocks"] as? [Any] ?? []).enumerated() {
                check(eb, execBlockKeys, "\(path).execBlocks[\(j)]")
                if let asdm = (eb as? [String: Any])?["asdm"] {
                    check(asdm, fileObjectKeys, "\(path).execBlocks[\(j)].asdm")
                }
            }
            for (j, product) in (object["products"] as? [Any] ?? []).enumerated() {
                check(product, productKeys, "\(path).products[\(j)]")
            }
        }
        return problems
    }

    /// `$.mouses[0].execBlocks[2].qa0` from a coding path.
    static func path(_ codingPath: [any CodingKey]) -> String {
        codingPath.reduce("$") { path, key in
            if let index = key.intValue { return "\(path)[\(index)]" }
            return "\(path).\(key.stringValue)"
        }
    }

    static func problem(from error: DecodingError) -> CatalogueImportError.Problem {
        switch error {
        case .keyNotFound(let key, let context):
            return .init(path: path(context.codingPath + [key]), message: "required field is missing")
        case .valueNotFound(let type, let context):
            return .init(path: path(context.codingPath), message: "must not be null (expected \(describe(type)))")
        case .typeMismatch(let type, let context):
            return .init(path: path(context.codingPath), message: "wrong type (expected \(describe(type)))")
        case .dataCorrupted(let context):
            return .init(path: path(context.codingPath), message: context.debugDescription)
        @unknown default:
            return .init(path: "$", message: "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int64.Type, is Int.Type: "an integer"
        case is [Any].Type: "an array"
        default: "\(type)".contains("Array") ? "an array" : "an object"
        }
    }
}
