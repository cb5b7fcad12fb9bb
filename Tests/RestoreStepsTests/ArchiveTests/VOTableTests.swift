import Foundation
import RestoreSteps
import Testing
import DropboxTestKit

/// Reads a file of `Tests/RestoreStepsTests/Fixtures/Archive` (see its README for the origin of each shape).
func archiveFixture(_ name: String) throws -> Data {
    var url = URL(fileURLWithPath: #filePath)
    url.deleteLastPathComponent()  // ArchiveTests
    url.deleteLastPathComponent()  // RestoreStepsTests
    return try Data(contentsOf: url.appendingPathComponent("Fixtures/Archive/\(name)"))
}

@Suite("VOTable", .tags(.unit))
struct VOTableTests {
    @Test("DataLink answer: fields, rows, empty cells as nil, case-insensitive access")
    func dataLink() throws {
        let table = try VOTable.parse(try archiveFixture("alma-datalink.xml"), name: "alma-datalink.xml")
        #expect(
            table.fields.map(\.name) == [
                "ID", "access_url", "service_def", "error_message", "semantics", "description", "content_type",
                "content_length", "readable",
            ])
        #expect(table.rows.count == 9)
        let first = try #require(table.rows.first)
        #expect(first["id"] == "uid://A001/X12a3/Xe9")
        #expect(first["ACCESS_URL"] == "https://almascience.org/dataPortal/member.uid___A001_X12a3_Xe9.README.txt")
        #expect(first["service_def"] == nil)
        #expect(first["content_length"] == "3523")
        #expect(first["no_such_column"] == nil)
        #expect(!first.has("no_such_column"))
        let service = table.rows[2]
        #expect(service["access_url"] == nil)
        #expect(service["service_def"] == "DataLink.2017.1.01185.S_uid___A001_X12a3_Xe9_001_of_001.tar")
        #expect(table.queryStatus == nil)
    }

    @Test("TAP answer: QUERY_STATUS OK; the INFO QUERY does not disturb the table")
    func tapLookup() throws {
        let table = try VOTable.parse(try archiveFixture("alma-tap-lookup.xml"), name: "tap")
        #expect(table.queryStatus == "OK")
        #expect(!table.isOverflow)
        #expect(table.rows.count == 1)
        #expect(table.rows[0]["Proposal_ID"] == "2017.1.01185.S")
        let empty = try VOTable.parse(try archiveFixture("alma-tap-empty.xml"), name: "tap")
        #expect(empty.rows.isEmpty)
        #expect(empty.fields.count == 5)
    }

    @Test("QUERY_STATUS ERROR is thrown with the server's message")
    func tapError() throws {
        let error = try #require(throws: RestoreError.self) {
            try VOTable.parse(try archiveFixture("alma-tap-error.xml"), name: "tap")
        }
        #expect(error.code == .archiveQueryFailed)
        #expect(error.message.contains("Column [member_ous_id] does not exist"))
    }

    @Test("BINARY serialization is refused clearly")
    func binary() throws {
        let error = try #require(throws: RestoreError.self) {
            try VOTable.parse(try archiveFixture("alma-tap-binary.xml"), name: "tap")
        }
        #expect(error.code == .archiveResponseUnreadable)
        #expect(error.message.contains("unsupported serialization BINARY"))
    }

    @Test("no namespace, IDs, a RESOURCE without type, too many cells, not a VOTable")
    func shapes() throws {
        let plain = """
            <VOTABLE><RESOURCE><TABLE><FIELD ID="col1" name="A"/><FIELD ID="b_id" name="B"/>
            <DATA><TABLEDATA><TR><TD>1</TD><TD> </TD></TR><TR><TD>2</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>
            """
        let table = try VOTable.parse(Data(plain.utf8), name: "plain")
        #expect(table.fields == [VOTable.Field(name: "A", id: "col1"), VOTable.Field(name: "B", id: "b_id")])
        #expect(table.rows.map(\.values) == [["1", nil], ["2", nil]])
        #expect(table.rows[0]["COL1"] == "1")
        let prefixed = """
            <v:VOTABLE xmlns:v="http://www.ivoa.net/xml/VOTable/v1.3"><v:RESOURCE type="results">
            <v:INFO name="QUERY_STATUS" value="OVERFLOW"/><v:TABLE><v:FIELD name="x"/>
            <v:DATA><v:TABLEDATA><v:TR><v:TD>7</v:TD></v:TR></v:TABLEDATA></v:DATA></v:TABLE></v:RESOURCE></v:VOTABLE>
            """
        let overflow = try VOTable.parse(Data(prefixed.utf8), name: "prefixed")
        #expect(overflow.isOverflow)
        #expect(overflow.rows[0]["X"] == "7")
        let tooMany =
            "<VOTABLE><RESOURCE><TABLE><FIELD name=\"a\"/><DATA><TABLEDATA><TR><TD>1</TD><TD>2</TD></TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"
        #expect(throws: RestoreError.self) { try VOTable.parse(Data(tooMany.utf8), name: "x") }
        for bad in ["<html><body>Service down</body></html>", "not xml", "<VOTABLE/>"] {
            let error = try #require(throws: RestoreError.self) { try VOTable.parse(Data(bad.utf8), name: "bad") }
            #expect(error.code == .archiveResponseUnreadable)
        }
    }
}
