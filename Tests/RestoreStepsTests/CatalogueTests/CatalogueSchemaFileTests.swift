import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

/// schemas/catalog.schema.json must describe the same fields the importer accepts.
@Suite(.tags(.unit)) struct CatalogueSchemaFileTests {
    static let schemaURL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("schemas/catalog.schema.json")

    func properties(_ object: Any?) -> Set<String> {
        Set(((object as? [String: Any])?["properties"] as? [String: Any])?.keys.map { $0 } ?? [])
    }

    @Test func schemaFieldsMatchTheImporter() throws {
        let data = try Data(contentsOf: Self.schemaURL)
        let schema = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        #expect(schema["$id"] as? String == CatalogueImportFile.schemaId)
        let defs = try #require(schema["$defs"] as? [String: Any])
        let mous = defs["mous"] as? [String: Any]
        let mousProperties = mous?["properties"] as? [String: Any]
        #expect(properties(schema) == CatalogueFieldCheck.fileKeys)
        #expect(properties(mous) == CatalogueFieldCheck.mousKeys)
        #expect(properties(defs["schedBlock"]) == CatalogueFieldCheck.schedBlockKeys)
        #expect((mousProperties?["schedBlock"] as? [String: Any])?["$ref"] as? String == "#/$defs/schedBlock")
        #expect(
            ((mousProperties?["otherSchedBlocks"] as? [String: Any])?["items"] as? [String: Any])?["$ref"] as? String
                == "#/$defs/schedBlock")
        #expect(
            properties((mousProperties?["sessions"] as? [String: Any])?["items"]) == CatalogueFieldCheck.sessionKeys)
        #expect(
            properties((mousProperties?["execBlocks"] as? [String: Any])?["items"]) == CatalogueFieldCheck.execBlockKeys
        )
        #expect(
            properties((mousProperties?["products"] as? [String: Any])?["items"]) == CatalogueFieldCheck.productKeys)
        #expect(properties(defs["file"]) == CatalogueFieldCheck.fileObjectKeys)
        let qa0 =
            (((mousProperties?["execBlocks"] as? [String: Any])?["items"] as? [String: Any])?["properties"]
            as? [String: Any])?["qa0"] as? [String: Any]
        #expect(qa0?["enum"] as? [String] == QA0Status.allCases.map(\.rawValue))
    }
}
