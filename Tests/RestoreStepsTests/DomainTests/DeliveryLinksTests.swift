import Foundation
import RestoreSteps
import DropboxTestKit
import Testing

@Suite("Delivery links and names", .tags(.unit))
struct DeliveryLinksTests {
    @Test("random names: 128 bits, hex, never repeated")
    func names() {
        let names = (0..<1000).map { _ in DeliveryName.random() }
        #expect(Set(names).count == 1000)
        #expect(names.allSatisfy(DeliveryName.isValid))
        #expect(!DeliveryName.isValid("../etc") && !DeliveryName.isValid(String(repeating: "A", count: 32)))
    }

    @Test("a directory delivery: wget reads the URL list and cuts the base path")
    func directory() {
        let links = DeliveryLinks(
            baseURL: "https://dl.example.org/alma/restores/", name: "00ff", path: "/srv/x/00ff", singleFile: nil,
            folder: "uid___A001_X1_X2")
        #expect(links.url == "https://dl.example.org/alma/restores/00ff/")
        #expect(
            links.downloadCommand
                == "wget -x -nH --cut-dirs=3 -P uid___A001_X1_X2 -i https://dl.example.org/alma/restores/00ff/urls.txt")
        #expect(
            links.urlList(["a.ms/table.f0", "odd name#1.txt"])
                == "https://dl.example.org/alma/restores/00ff/a.ms/table.f0\nhttps://dl.example.org/alma/restores/00ff/odd%20name%231.txt\n"
        )
        #expect(!(links.downloadCommand ?? "").contains("/srv/x"))
    }

    @Test("a tar delivery: one curl; no base URL: a file URL and no command")
    func single() {
        let tar = DeliveryLinks(
            baseURL: "http://127.0.0.1:8080/d", name: "ab", path: "/p/ab", singleFile: "m.tgz", folder: "m")
        #expect(tar.downloadCommand == "curl -fLO http://127.0.0.1:8080/d/ab/m.tgz")
        let local = DeliveryLinks(baseURL: nil, name: "ab", path: "/p/ab", singleFile: nil, folder: "m")
        #expect(local.url == "file:///p/ab/" && local.downloadCommand == nil)
    }
}
