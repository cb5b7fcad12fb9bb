import Foundation
import Testing
import DropboxTestKit
@testable import RestoreSteps

@Suite(.tags(.unit)) struct XMLTreeTests {
    @Test func readsByLocalNameAcrossNamespaces() throws {
        let tree = try XMLTree.parse(
            string: "<a:r xmlns:a=\"A\" xmlns:b=\"B\"><b:x k=\"v &amp; w\">t &lt; u</b:x><x>2</x></a:r>")
        let root = try #require(tree.root)
        #expect(root.localName == "r")
        #expect(root.namespaceURI == "A")
        #expect(root.elements("x").count == 2)
        #expect(root.element("x")?.attribute("k") == "v & w")
        #expect(root.element("x")?.text == "t < u")
        #expect(root.element("x")?.namespaceURI == "B")
        #expect(root.descendants("x").map(\.text) == ["t < u", "2"])
    }

    @Test(arguments: [
        "", "<a>", "<a></b>", "<p:a/>",
        "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
        "<!DOCTYPE a [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><a>&e;</a>",
        "<!DOCTYPE a SYSTEM \"http://127.0.0.1:9/x.dtd\"><a/>",
    ])
    func refusesBrokenOrDangerousDocuments(_ text: String) {
        #expect(throws: XMLReadError.self) { try XMLTree.parse(string: text) }
    }

    @Test func writerEscapesAndKeepsLeavesOnOneLine() throws {
        let writer = try XMLWriter()
        try writer.start("r")
        try writer.leaf("v", "a < b & \"c\"", attributes: [("xmlns", "")])
        try writer.leaf("empty", "")
        try writer.end()
        let text = try writer.finish()
        #expect(
            text
                == "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r>\n    <v xmlns=\"\">a &lt; b &amp; &quot;c&quot;</v>\n    <empty/>\n</r>\n"
        )
        #expect(try XMLTree.parse(string: text).root?.element("v")?.text == "a < b & \"c\"")
    }
}
