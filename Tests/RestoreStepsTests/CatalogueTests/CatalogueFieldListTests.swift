import DropboxTestKit
import Testing
@testable import RestoreSteps

/// ``CatalogueImportFile`` (the file as JSON spells it, so every problem gets its path) and ``MousRecord`` (the
/// typed record the restore uses) describe one concept: their field lists must stay the same, so a field added
/// to one and forgotten in the other fails here, not in a restore.
@Suite(.tags(.unit)) struct CatalogueFieldListTests {
    static func fields(_ value: Any) -> Set<String> { Set(Mirror(reflecting: value).children.compactMap(\.label)) }

    @Test func importFileAndRecordShareTheirFieldLists() throws {
        let entry = SeedMous.mousEntry()
        let record = try SeedMous.record(entry)
        #expect(Self.fields(entry) == Self.fields(record))
        #expect(Self.fields(entry.schedBlock) == Self.fields(record.schedBlock))
        let session = try #require(entry.sessions?.first)
        #expect(Self.fields(session) == Self.fields(try #require(record.sessions.first)))
        let eb = try #require(entry.execBlocks.first)
        let recordEB = try #require(record.execBlocks.first)
        #expect(Self.fields(eb) == Self.fields(recordEB))
        #expect(Self.fields(try #require(eb.asdm)) == Self.fields(try #require(recordEB.asdm)))
        // The one difference of shape: a product's file fields are flat in the file, an ArchiveFile in the record.
        let product = try #require(entry.products.first)
        let recordProduct = try #require(record.products.first)
        #expect(Self.fields(recordProduct) == ["fileClass", "file"])
        #expect(Self.fields(product) == Self.fields(recordProduct.file).union(["fileClass"]))
    }
}
