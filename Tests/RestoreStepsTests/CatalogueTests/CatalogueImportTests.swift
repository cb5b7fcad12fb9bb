import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct CatalogueImportFileTests {
    /// The example of INTERFACES.md §1, verbatim apart from the comments.
    static let interfacesExample = """
        {
          "schema": "dropbox-agent/catalog/v1",
          "mouses": [{
            "mous": "uid://A001/X3f01/X1a5",
            "project": "2023.1.00042.S",
            "obsProject": "uid://A001/X3f01/X1a0",
            "projectStatus": "uid://A001/X3f01/X1a1",
            "obsUnitSetPartId": "X1573098450",
            "sous": "uid://A001/X3f01/X1a3", "gous": "uid://A001/X3f01/X1a4",
            "title": "Synthetic demo MOUS",
            "releaseDate": "2024-01-01T00:00:00Z",
            "schedBlock": {"uid": "uid://A001/X3f01/X1a6", "name": "Demo_a_03_TM1", "statusUid": "uid://A001/X3f01/X1a7"},
            "sessions": [
              {"id": "uid://A001/X3f01/X1a5#S1", "startTime": "2024-03-01T10:00:00Z", "endTime": "2024-03-01T11:00:00Z"}
            ],
            "execBlocks": [
              {"uid": "uid://A002/X1/X1", "qa0": "Pass", "sessionId": "uid://A001/X3f01/X1a5#S1",
               "startTime": "2024-03-01T10:05:00Z", "endTime": "2024-03-01T10:13:00Z",
               "asdm": {"ngasFileId": "uid___A002_X1_X1.asdm.sdm.tar.gz", "size": 1234567, "checksum": "3735928559", "checksumVariant": "crc32"}}
            ],
            "products": [
              {"fileClass": "calibration", "ngasFileId": "uid___A001_X3f01_X1a5.session_1.caltables.tgz",
               "size": 51234, "checksum": "123456789", "checksumVariant": "crc32"}
            ],
            "ousStatusXml": null
          }]
        }
        """

    @Test func decodesTheInterfacesExample() throws {
        let file = try CatalogueImportFile.decode(Data(Self.interfacesExample.utf8))
        let record = try #require(try file.records().first)
        #expect(record.mous.rawValue == "uid://A001/X3f01/X1a5")
        #expect(record.execBlocks.first?.asdm?.checksumVariant == .crc32)
        #expect(record.execBlocks.first?.asdmDiskName.rawValue == "uid___A002_X1_X1")
        #expect(record.releaseDate == UTCTime(parsing: "2024-01-01T00:00:00Z"))
    }

    @Test func reportsEveryProblemWithItsJSONPath() throws {
        var json = Self.interfacesExample
        json = json.replacingOccurrences(of: "\"qa0\": \"Pass\"", with: "\"qa0\": \"Passed\"")
        json = json.replacingOccurrences(
            of: "\"mous\": \"uid://A001/X3f01/X1a5\"", with: "\"mous\": \"uid://A001/../etc\"")
        json = json.replacingOccurrences(
            of: "\"fileClass\": \"calibration\"",
            with: "\"fileClass\": \"calibrations\", \"checksumVarient\": \"crc32\"")
        json = json.replacingOccurrences(
            of: "\"endTime\": \"2024-03-01T10:13:00Z\"", with: "\"endTime\": \"yesterday\"")
        json = json.replacingOccurrences(of: "uid___A002_X1_X1.asdm.sdm.tar.gz", with: "../../etc/passwd")
        do {
            _ = try CatalogueImportFile.decode(Data(json.utf8))
            Issue.record("invalid file accepted")
        } catch {
            let paths = Set(error.problems.map(\.path))
            #expect(paths.contains("$.mouses[0].products[0].checksumVarient"), "unknown field: \(error)")
            #expect(paths.contains("$.mouses[0].mous"))
            #expect(paths.contains("$.mouses[0].execBlocks[0].qa0"))
            #expect(paths.contains("$.mouses[0].execBlocks[0].endTime"))
            #expect(paths.contains("$.mouses[0].execBlocks[0].asdm.ngasFileId"))
            #expect(paths.contains("$.mouses[0].products[0].fileClass"))
            #expect(
                error.description.contains(
                    "$.mouses[0].execBlocks[0].qa0: \"Passed\" is not one of Pass, SemiPass, Fail, Unset, Pending"))
        }
    }

    @Test func reportsMissingFieldsAndWrongTypesWithPaths() {
        let missing = Self.interfacesExample.replacingOccurrences(of: "\"title\": \"Synthetic demo MOUS\",", with: "")
        #expect(
            throws: CatalogueImportError(problems: [
                .init(path: "$.mouses[0].title", message: "required field is missing")
            ])
        ) {
            try CatalogueImportFile.decode(Data(missing.utf8))
        }
        let wrongType = Self.interfacesExample.replacingOccurrences(of: "\"size\": 51234", with: "\"size\": \"big\"")
        do {
            _ = try CatalogueImportFile.decode(Data(wrongType.utf8))
            Issue.record("wrong type accepted")
        } catch {
            #expect(error.problems.first?.path == "$.mouses[0].products[0].size")
        }
        do {
            _ = try CatalogueImportFile.decode(Data("{\"schema\": ".utf8))
            Issue.record("broken JSON accepted")
        } catch {
            #expect(error.problems.first?.path == "$")
        }
    }

    @Test func refusesDuplicatesAndDanglingSessionReferences() {
        var entry = SeedMous.mousEntry()
        entry.execBlocks[1].uid = entry.execBlocks[0].uid
        entry.execBlocks[2].sessionId = "uid://A001/X1284/X265f#S9"
        entry.products.append(entry.products[0])
        let paths = Set(SeedMous.file([entry]).validate().map(\.path))
        #expect(
            paths == [
                "$.mouses[0].execBlocks[1].uid", "$.mouses[0].execBlocks[2].sessionId",
                "$.mouses[0].products[\(entry.products.count - 1)].ngasFileId",
            ])
    }

    @Test func refusesUnreadableOUSStatusXml() {
        var entry = SeedMous.mousEntry()
        entry.ousStatusXml = "<OUSStatus><Session></OUSStatus>"
        let problems = SeedMous.file([entry]).validate()
        #expect(problems.map(\.path) == ["$.mouses[0].ousStatusXml"])
        entry.ousStatusXml = "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><OUSStatus>&a;</OUSStatus>"
        #expect(SeedMous.file([entry]).validate().first?.message.contains("DOCTYPE") == true)
    }

    @Test func recordsAndImportFileRoundTrip() throws {
        let file = SeedMous.file()
        let records = try file.records()
        let again = try CatalogueImportFile(records: records).records()
        #expect(records == again)
        let data = try CatalogueImportFile(records: records).encoded()
        #expect(try CatalogueImportFile.decode(data).records() == records)
    }
}
