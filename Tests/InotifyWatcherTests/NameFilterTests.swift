import InotifyWatcher
import Testing
import DropboxTestKit

extension InotifyWatcherTests {
    @Suite(.tags(.unit)) struct NameFilters {
        @Test(arguments: [
            ".request.json.Xa81Qz", ".nfs000000000012345600000001", ".~tmp~", "request.json~", "upload.json.part",
            "upload.json.PART", "download.crdownload", "x.filepart", "x.tmp", "x.TMP", ".x.swp", "x.swp", "sedAb12Cd",
        ])
        func temporaryNamesAreRecognised(name: String) {
            #expect(NameFilter.isTemporaryName(name))
            #expect(!NameFilter().accepts(name))
            #expect(NameFilter(ignoresTemporaryNames: false).accepts(name))
        }

        @Test(arguments: ["request.json", "sed.json", "sedAb12C", "sedAb12Cde", "sedAb-2Cd", "partial.json", "tmp"])
        func ordinaryNamesAreNotTemporary(name: String) {
            #expect(!NameFilter.isTemporaryName(name))
        }

        @Test func includeAndExcludeGlobs() {
            let filter = NameFilter(include: ["*.json"], exclude: ["*.status.json"])
            #expect(filter.accepts("a.json"))
            #expect(!filter.accepts("a.status.json"))
            #expect(!filter.accepts("a.xml"))
            #expect(!filter.accepts(".a.json"))
            #expect(NameFilter().accepts("anything"))
        }
    }
}
