import Delivery
import Foundation
import Testing
import DropboxTestKit

/// A store directory served by nginx (`/files/`), optionally with its directory index on.
private struct NginxFiles {
    let dir: TemporaryDirectory
    let store: String
    let output: String
    let nginx: TestService

    init(autoindex: String? = nil, populate: (String) throws -> Void) throws {
        dir = try TemporaryDirectory("url-store")
        store = try dir.sub("store")
        output = try dir.sub("out")
        do {
            try populate(store)
            nginx = try TestService.nginxStore(store: store, runDirectory: try dir.sub("run"), autoindex: autoindex)
        } catch {
            dir.remove()
            throw error
        }
    }

    var filesURL: String { nginx.baseURL + "/files/" }

    func tearDown() {
        nginx.stop()
        dir.remove()
    }
}

/// Names that exercise percent-encoding and filtering in a listing.
private func populateListingStore(_ store: String) throws {
    for name in [
        "2017.1.01185.S_uid___A001_X12a3_Xe9_auxiliary.tar", "uid___A002_X1_X2.asdm.sdm.tar", "name with space.txt",
        "100%.txt", "a&b.txt", ".hidden",
    ] {
        try writeRandomFile(store + "/" + name, size: 100)
    }
    try FileManager.default.createDirectory(atPath: store + "/sub", withIntermediateDirectories: true)
    chmod(store + "/sub", 0o755)
}

private let expectedListedFiles = [
    "100%.txt", "2017.1.01185.S_uid___A001_X12a3_Xe9_auxiliary.tar", "a&b.txt", "name with space.txt",
    "uid___A002_X1_X2.asdm.sdm.tar",
]

@Suite("HTTPDirectoryListing and URLFileStore against nginx", .serialized, .tags(.integration), .selected(.integration))
struct URLRetrievalNginxTests {
    @Test("nginx autoindex HTML: direct children, decoded, no parent link, directories flagged")
    func autoindexHTML() async throws {
        let files = try NginxFiles(autoindex: "html", populate: populateListingStore)
        defer { files.tearDown() }
        let document = try await HTTPDocument.get(url: files.filesURL)
        #expect(document.status == 200)
        #expect(document.contentType?.contains("text/html") == true)
        let html = String(decoding: document.body, as: UTF8.self)
        #expect(html.contains("../"), "nginx's page has a parent link the parser must skip")
        let listing = try HTTPDirectoryListing.parse(html: document.body, baseURL: files.filesURL)
        #expect(listing.fileNames.sorted() == expectedListedFiles)
        #expect(listing.entries.contains(HTTPDirectoryListing.Entry(name: "sub", isDirectory: true)))
        #expect(listing.rejectedNames.isEmpty)
        // Same through the content-type dispatch, with the base URL taken from the document.
        #expect(try HTTPDirectoryListing.parse(document).fileNames.sorted() == expectedListedFiles)
    }

    @Test("nginx autoindex JSON: names and exact sizes")
    func autoindexJSON() async throws {
        let files = try NginxFiles(autoindex: "json", populate: populateListingStore)
        defer { files.tearDown() }
        let document = try await HTTPDocument.get(url: files.filesURL)
        let listing = try HTTPDirectoryListing.parse(document)
        #expect(listing.fileNames.sorted() == expectedListedFiles)
        #expect(listing.entries.filter { !$0.isDirectory }.allSatisfy { $0.size == 100 })
        #expect(listing.entries.contains { $0.name == "sub" && $0.isDirectory })
    }

    @Test("HTTPDocument: 404 is fileNotFound with host and status; fetch returns any status")
    func documentErrors() async throws {
        let files = try NginxFiles { _ in }
        defer { files.tearDown() }
        let error = try await #require(throws: DeliveryError.self) {
            try await HTTPDocument.get(url: files.filesURL + "missing.xml")
        }
        #expect(error.code == .fileNotFound)
        #expect(error.httpStatus == 404)
        #expect(error.message.contains("127.0.0.1"))
        #expect(error.message.contains("404"))
        let answer = try await HTTPDocument.fetch(url: files.filesURL + "missing.xml")
        #expect(answer.status == 404)
        let tooLarge = try await #require(throws: DeliveryError.self) {
            try await HTTPDocument.get(url: files.nginx.baseURL + "/RETRIEVE?file_id=x", maxBytes: 10)
        }
        #expect(tooLarge.code == .responseTooLarge)
        let bad = try await #require(throws: DeliveryError.self) {
            try await HTTPDocument.get(url: files.filesURL, headers: ["X-Evil": "a\r\nHost: other"])
        }
        #expect(bad.code == .invalidConfiguration)
    }

    @Test("URLFileStore: verified fetch, resume of a .part with Range, 404, through a FileCache")
    func urlStoreFetchAndResume() async throws {
        let name = "2017.1.01185.S_uid___A002_X1_X2.asdm.sdm.tar"
        let dataBox = DataBox()
        let files = try NginxFiles { store in
            dataBox.data = try writeRandomFile(store + "/" + name, size: 3_000_000 + 5)
        }
        defer { files.tearDown() }
        let data = dataBox.data
        var crc = Checksum(.crc32)
        crc.update(data)
        let expected = ExpectedFile(fileId: name, size: Int64(data.count), checksum: crc.decimalString)
        let store = URLFileStore(
            urls: [name: files.filesURL + name, "gone.tar": files.filesURL + "gone.tar"],
            headers: ["Authorization": "Bearer secret-token"])
        #expect(store.description.contains(files.nginx.baseURL))

        // A correct prefix in .part: only the rest crosses the network.
        let destination = files.output + "/" + name
        try data.prefix(1_000_000).write(to: URL(fileURLWithPath: destination + ".part"))
        let progress = ProgressLog()
        let result = try await store.retrieve(expected, to: destination) { progress.add($0, $1) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: destination)) == data)
        #expect(result.bytesTransferred == Int64(data.count - 1_000_000))
        #expect(result.size == Int64(data.count))
        #expect(progress.values.last?.0 == Int64(data.count))
        #expect(!FileManager.default.fileExists(atPath: destination + ".part"))

        // A size expectation that the server's Content-Length contradicts: never a silently wrong file.
        let wrong = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(
                ExpectedFile(fileId: name, size: Int64(data.count + 1)), to: files.output + "/wrong"
            ) { _, _ in }
        }
        #expect(wrong.code == .sizeMismatch)

        let missing = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(ExpectedFile(fileId: "gone.tar"), to: files.output + "/gone.tar") { _, _ in }
        }
        #expect(missing.code == .fileNotFound)
        #expect(missing.httpStatus == 404)
        let unknown = try await #require(throws: DeliveryError.self) {
            try await store.retrieve(ExpectedFile(fileId: "other.tar"), to: files.output + "/other.tar") { _, _ in }
        }
        #expect(unknown.code == .invalidConfiguration)

        // Behind a FileCache: first a miss, then a hit without a request.
        let cache = FileCache(root: try files.dir.sub("cache"), maxBytes: 1 << 30)
        let first = try await cache.retrieve(expected, from: store, to: files.output + "/c1") { _, _ in }
        let second = try await cache.retrieve(expected, from: store, to: files.output + "/c2") { _, _ in }
        #expect(!first.fromCache)
        #expect(second.fromCache)
        #expect(try Data(contentsOf: URL(fileURLWithPath: files.output + "/c2")) == data)
    }
}

/// Carries data out of a non-escaping set-up closure.
private final class DataBox: @unchecked Sendable {  // written once during set-up, read after, on one task
    var data = Data()
}

@Suite("HTTPDirectoryListing parsing", .tags(.unit))
struct HTTPDirectoryListingTests {
    @Test("Apache-style page: sort links, icons, parent, other hosts and directories are skipped")
    func apacheStyle() throws {
        let html = """
            <!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">
            <html><head><title>Index of /pkg</title></head><body><h1>Index of /pkg</h1>
            <table><tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th></tr>
            <tr><td><a href="/"><img src="/icons/back.gif"></a></td><td><a href="/">Parent Directory</a></td></tr>
            <tr><td><a href="x_auxiliary.tar"><img src="/icons/tar.gif"></a></td><td><a href="x_auxiliary.tar">x_auxiliary.tar</a></td></tr>
            <tr><td><a href="/pkg/abs%20same.tar">abs same</a></td></tr>
            <tr><td><a href="http://127.0.0.1:8080/pkg/full.tar">full</a></td></tr>
            <tr><td><a href="http://elsewhere.example/pkg/far.tar">far</a></td></tr>
            <tr><td><a href="/other/dir.tar">other</a></td></tr>
            <tr><td><a href="deeper/file.tar">deeper</a></td></tr>
            <tr><td><a href="../">up</a></td><td><a href="#top">top</a></td></tr>
            <tr><td><a href="..%2Fetc%2Fpasswd">escape</a></td><td><a href="bad%00name">nul</a></td></tr>
            <tr><td><a href="raw/">raw/</a></td><td><a href="./dot:colon.txt">colon</a></td></tr>
            <tr><td><a href="a&amp;b.txt">a&amp;b.txt</a></td></tr>
            </table></body></html>
            """
        let listing = try HTTPDirectoryListing.parse(html: Data(html.utf8), baseURL: "http://127.0.0.1:8080/pkg")
        #expect(listing.fileNames == ["x_auxiliary.tar", "abs same.tar", "full.tar", "dot:colon.txt", "a&b.txt"])
        #expect(listing.entries.contains(HTTPDirectoryListing.Entry(name: "raw", isDirectory: true)))
        #expect(listing.rejectedNames == ["../etc/passwd", "bad\0name"])
    }

    @Test("JSON: bad shapes are errors, 'other' entries and unsafe names are skipped")
    func json() throws {
        let text =
            #"[{"name":"a.tar","type":"file","size":5},{"name":"s","type":"other"},{"name":"../x","type":"file"}]"#
        let listing = try HTTPDirectoryListing.parse(json: Data(text.utf8))
        #expect(listing.entries == [HTTPDirectoryListing.Entry(name: "a.tar", isDirectory: false, size: 5)])
        #expect(listing.rejectedNames == ["../x"])
        #expect(throws: DeliveryError.self) { try HTTPDirectoryListing.parse(json: Data("{}".utf8)) }
    }

    @Test("plain file names")
    func plainNames() {
        for good in ["a", "a.tar", "uid___A001_X1_X2.asdm.sdm.tar", "name with space"] {
            #expect(PlainFileName.isValid(good), "\(good)")
        }
        for bad in ["", ".", "..", "a/b", "a\\b", "x..y", "a\u{7F}", "a\nb", String(repeating: "x", count: 256)] {
            #expect(!PlainFileName.isValid(bad), "\(bad.debugDescription)")
        }
    }
}
