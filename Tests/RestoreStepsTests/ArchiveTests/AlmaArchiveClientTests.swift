import Delivery
import Foundation
import RestoreSteps
import Testing
import DropboxTestKit

@Suite("AlmaArchiveClient", .tags(.integration), .selected(.integration))
struct AlmaArchiveClientTests {
    let mous = AlmaUid("uid://A001/X12a3/Xe9")!

    @Test("the TAP and DataLink requests are exactly the spec's")
    func requests() {
        let client = AlmaArchiveClient(baseURL: "https://archive.example.org/alma//", token: " tok-123\n")
        #expect(
            AlmaArchiveClient.lookupADQL(mous)
                == "SELECT DISTINCT member_ous_uid, group_ous_uid, proposal_id, data_rights, obs_release_date "
                + "FROM ivoa.obscore WHERE member_ous_uid = 'uid://A001/X12a3/Xe9'")
        #expect(
            client.lookupURL(mous)
                == "https://archive.example.org/alma/tap/sync?REQUEST=doQuery&LANG=ADQL&FORMAT=votable&QUERY="
                + "SELECT%20DISTINCT%20member_ous_uid%2C%20group_ous_uid%2C%20proposal_id%2C%20data_rights%2C%20"
                + "obs_release_date%20FROM%20ivoa.obscore%20WHERE%20member_ous_uid%20%3D%20%27uid%3A%2F%2FA001%2F"
                + "X12a3%2FXe9%27")
        // Decoding the query gives back the ADQL.
        let components = URLComponents(string: client.lookupURL(mous))
        #expect(components?.queryItems?.first { $0.name == "QUERY" }?.value == AlmaArchiveClient.lookupADQL(mous))
        #expect(
            client.dataLinkURL(mous)
                == "https://archive.example.org/alma/datalink/sync?ID=uid%3A%2F%2FA001%2FX12a3%2FXe9")
        #expect(client.requestHeaders == ["Authorization": "Bearer tok-123"])
        #expect(AlmaArchiveClient(baseURL: "http://b", token: "  ").requestHeaders.isEmpty)
        #expect(AlmaArchiveClient(baseURL: "http://b").token == nil)
    }

    @Test("the lookup record: project, GOUS, rights, release date; 0 rows is nil")
    func record() throws {
        let table = try VOTable.parse(try archiveFixture("alma-tap-lookup.xml"), name: "tap")
        let record = try #require(try AlmaArchiveClient.record(from: table, mous: mous))
        #expect(record.mous == mous)
        #expect(record.groupOus == AlmaUid("uid://A001/X12a3/Xe8"))
        #expect(record.project == "2017.1.01185.S")
        #expect(record.isPublic)
        #expect(record.releaseDate == UTCTime(parsing: "2019-06-14T21:09:01Z"))
        let empty = try VOTable.parse(try archiveFixture("alma-tap-empty.xml"), name: "tap")
        #expect(try AlmaArchiveClient.record(from: empty, mous: mous) == nil)
        #expect(try AlmaArchiveClient.record(from: table, mous: AlmaUid("uid://A001/X1/X2")!) == nil)
    }

    @Test("release dates with and without Z or a fraction; malformed values are errors")
    func releaseDates() throws {
        let fields = ["member_ous_uid", "group_ous_uid", "proposal_id", "data_rights", "obs_release_date"].map {
            VOTable.Field(name: $0)
        }
        func release(_ text: String?) throws(RestoreError) -> UTCTime? {
            let table = VOTable(
                fields: fields, rows: [[mous.rawValue, "uid://A001/X12a3/Xe8", "2024.1.00001.S", "Proprietary", text]])
            return try AlmaArchiveClient.record(from: table, mous: mous)?.releaseDate
        }
        let expected = UTCTime(parsing: "2024-09-01T00:00:00Z")
        for text in [
            "2024-09-01T00:00:00.000", "2024-09-01T00:00:00", "2024-09-01T00:00:00Z", "2024-09-01T00:00:00.000Z",
        ] {
            #expect(try release(text) == expected, "\(text)")
        }
        #expect(try release(nil) == nil)
        #expect(throws: RestoreError.self) { try release("next year") }
        let badGous = VOTable(fields: fields, rows: [[mous.rawValue, "gous?", "p", "Public", nil]])
        #expect(throws: RestoreError.self) { try AlmaArchiveClient.record(from: badGous, mous: mous) }
        let missingColumn = VOTable(fields: Array(fields.prefix(3)), rows: [[mous.rawValue, "uid://A001/X1/X2", "p"]])
        #expect(throws: RestoreError.self) { try AlmaArchiveClient.record(from: missingColumn, mous: mous) }
    }

    @Test("DataLink rows: typed values, service rows flagged")
    func dataLinkRows() throws {
        let table = try VOTable.parse(try archiveFixture("alma-datalink.xml"), name: "datalink")
        let rows = try AlmaArchiveClient.dataLinkRows(from: table, mous: mous)
        #expect(rows.count == 9)
        #expect(rows.filter(\.isServiceRow).count == 2)
        let readme = rows[0]
        #expect(readme.semantics == "#documentation")
        #expect(readme.contentLength == 3523)
        #expect(readme.readable == true)
        #expect(readme.fileName == "member.uid___A001_X12a3_Xe9.README.txt")
        #expect(rows[2].fileName == nil)
        #expect(rows[2].contentType == "application/x-votable+xml;content=datalink")
    }

    @Test("DataLink error for the MOUS itself is archiveUnknownMous with the service's message")
    func unknownMous() throws {
        let table = try VOTable.parse(try archiveFixture("alma-datalink-unknown.xml"), name: "datalink")
        let error = try #require(throws: RestoreError.self) {
            try AlmaArchiveClient.dataLinkRows(from: table, mous: AlmaUid("uid://A001/X0/X0")!)
        }
        #expect(error.code == .archiveUnknownMous)
        #expect(error.message.contains("NotFoundFault"))
        let empty = VOTable(fields: [VOTable.Field(name: "ID")], rows: [])
        #expect(throws: RestoreError.self) { try AlmaArchiveClient.dataLinkRows(from: empty, mous: mous) }
    }

    @Test("restore files: the auxiliary tar and the raw ASDM tars, never the product tar")
    func restoreFiles() throws {
        let table = try VOTable.parse(try archiveFixture("alma-datalink.xml"), name: "datalink")
        let rows = try AlmaArchiveClient.dataLinkRows(from: table, mous: mous)
        let chosen = try AlmaArchiveClient.restoreFiles(rows)
        #expect(chosen.auxiliary.fileName == "2017.1.01185.S_uid___A001_X12a3_Xe9_auxiliary.tar")
        #expect(chosen.auxiliary.contentLength == 135_479_296)
        #expect(
            chosen.raw.compactMap(\.fileName) == [
                "2017.1.01185.S_uid___A002_Xd28a9e_X71b8.asdm.sdm.tar",
                "2017.1.01185.S_uid___A002_Xd28a9e_X7b4d.asdm.sdm.tar",
                "2017.1.01185.S_uid___A002_Xd29c1f_X1f74.asdm.sdm.tar",
                "2017.1.01185.S_uid___A002_Xd29c1f_X5cf.asdm.sdm.tar",
            ])
        #expect(!([chosen.auxiliary] + chosen.raw).contains { $0.semantics == "#this" })
        #expect(chosen.auxiliary.expectedFile == ExpectedFile(fileId: chosen.auxiliary.fileName!, size: 135_479_296))

        // A store for exactly those files, with the token header.
        let client = AlmaArchiveClient(baseURL: "https://almascience.org", token: "t")
        let store = client.fileStore(for: [chosen.auxiliary] + chosen.raw)
        #expect(store.urls.count == 5)
        #expect(store.headers == ["Authorization": "Bearer t"])
        #expect(
            store.urls["2017.1.01185.S_uid___A001_X12a3_Xe9_auxiliary.tar"]
                == "https://almascience.org/dataPortal/2017.1.01185.S_uid___A001_X12a3_Xe9_auxiliary.tar")
    }

    @Test("selection rules: name fallback, missing or double auxiliary, unsafe names, unreadable links")
    func selectionRules() throws {
        let base = "https://a.example/dataPortal/"
        func row(_ name: String, _ semantics: String?, readable: Bool? = true) -> DataLinkRow {
            DataLinkRow(id: mous.rawValue, accessURL: base + name, semantics: semantics, readable: readable)
        }
        // No #auxiliary semantics: the name decides; #package raw tars accepted; #this never.
        let byName = try AlmaArchiveClient.restoreFiles([
            row("P_uid___A001_X1_X2_auxiliary.tar", "#package"), row("P_uid___A002_X1_X3.asdm.sdm.tar", "#package"),
            row("P_uid___A002_X1_X9.asdm.sdm.tar", "#this"), row("P_uid___A001_X1_X2_001_of_001.tar", "#this"),
        ])
        #expect(byName.auxiliary.fileName == "P_uid___A001_X1_X2_auxiliary.tar")
        #expect(byName.raw.compactMap(\.fileName) == ["P_uid___A002_X1_X3.asdm.sdm.tar"])

        let missing = try #require(throws: RestoreError.self) {
            try AlmaArchiveClient.restoreFiles([
                row("P_uid___A001_X1_X2_001_of_001.tar", "#this"),
                row("P_uid___A002_X1_X3.asdm.sdm.tar", "#progenitor"),
            ])
        }
        #expect(missing.code == .archiveNoAuxiliary)
        let two = try #require(throws: RestoreError.self) {
            try AlmaArchiveClient.restoreFiles([
                row("a_auxiliary.tar", "#auxiliary"), row("b_auxiliary.tar", "#auxiliary"),
            ])
        }
        #expect(two.code == .archiveNoAuxiliary)

        for unsafe in [
            "..%2F..%2Fetc%2Fx_auxiliary.tar", ".x_auxiliary.tar", "-rf_auxiliary.tar", "a%0Ab_auxiliary.tar",
        ] {
            let error = try #require(throws: RestoreError.self) {
                try AlmaArchiveClient.restoreFiles([row(unsafe, "#auxiliary")])
            }
            #expect(error.code == .archiveUnsafeFileName, "\(unsafe)")
        }
        let percent = try AlmaArchiveClient.restoreFiles([row("P%2B1_auxiliary.tar", "#auxiliary")])
        #expect(percent.auxiliary.fileName == "P+1_auxiliary.tar")

        let closed = try #require(throws: RestoreError.self) {
            try AlmaArchiveClient.restoreFiles([
                row("P_auxiliary.tar", "#auxiliary"),
                row("P_uid___A002_X1_X3.asdm.sdm.tar", "#progenitor", readable: false),
            ])
        }
        #expect(closed.code == .archiveAccessDenied)
        #expect(closed.hint?.contains("sources.almaArchive.tokenFile") == true)
    }

    @Test("an unreachable archive is archiveUnavailable and transient")
    func unreachable() async throws {
        var options = HTTPStoreOptions()
        options.connectTimeout = .seconds(2)
        let client = AlmaArchiveClient(baseURL: "http://127.0.0.1:1", options: options)
        let error = try await #require(throws: RestoreError.self) { try await client.lookup(mous) }
        #expect(error.code == .archiveUnavailable)
        #expect(error.isTransient)
    }
}
