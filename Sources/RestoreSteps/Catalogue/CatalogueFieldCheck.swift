internal import FoundationEssentials
internal import Glibc

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

    /// The shape of the raw JSON (objects and arrays; every other value is a leaf): what the field check walks.
    indirect enum Tree: Decodable {
        case object([String: Tree])
        case array([Tree])
        case leaf

        init(from decoder: any Decoder) throws {
            if let object = try? decoder.container(keyedBy: AnyKey.self) {
                var members: [String: Tree] = [:]
                for key in object.allKeys { members[key.stringValue] = try object.decode(Tree.self, forKey: key) }
                self = .object(members)
            } else if var array = try? decoder.unkeyedContainer() {
                var elements: [Tree] = []
                while !array.isAtEnd { elements.append(try array.decode(Tree.self)) }
                self = .array(elements)
            } else {
                self = .leaf
            }
        }

        subscript(key: String) -> Tree? {
            if case .object(let members) = self { return members[key] }
            return nil
        }

        var elements: [Tree] {
            if case .array(let elements) = self { return elements }
            return []
        }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// The reason a document is not JSON, without the decoder's type names.
    static func describe(_ error: any Error) -> String {
        if case DecodingError.dataCorrupted(let context) = error {
            return (context.underlyingError.map { "\($0)" } ?? context.debugDescription)
        }
        return "\(error)"
    }

    /// Every field not in the format, with its path. A misspelled optional field would otherwise be ignored.
    static func unknownFields(in json: Tree) -> [CatalogueImportError.Problem] {
        var problems: [CatalogueImportError.Problem] = []
        func check(_ value: Tree, _ keys: Set<String>, _ path: String) {
            guard case .object(let object) = value else { return }
            for key in object.keys.sorted() where !keys.contains(key) {
                problems.append(
                    .init(
                        path: "\(path).\(key)",
                        message: "unknown field (allowed: \(keys.sorted().joined(separator: ", ")))"))
            }
        }
        check(json, fileKeys, "$")
        guard let mouses = json["mouses"], case .array = mouses else { return problems }
        for (i, mous) in mouses.elements.enumerated() {
            let path = "$.mouses[\(i)]"
            check(mous, mousKeys, path)
            guard case .object = mous else { continue }
            if let sb = mous["schedBlock"] { check(sb, schedBlockKeys, "\(path).schedBlock") }
            for (j, sb) in (mous["otherSchedBlocks"]?.elements ?? []).enumerated() {
                check(sb, schedBlockKeys, "\(path).otherSchedBlocks[\(j)]")
            }
            for (j, session) in (mous["sessions"]?.elements ?? []).enumerated() {
                check(session, sessionKeys, "\(path).sessions[\(j)]")
            }
            for (j, eb) in (mous["execBlocks"]?.elements ?? []).enumerated() {
                check(eb, execBlockKeys, "\(path).execBlocks[\(j)]")
                if let asdm = eb["asdm"] {
                    check(asdm, fileObjectKeys, "\(path).execBlocks[\(j)].asdm")
                }
            }
            for (j, product) in (mous["products"]?.elements ?? []).enumerated() {
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
