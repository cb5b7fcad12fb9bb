import Foundation
import RestoreSteps
import Testing
import DropboxTestKit

@testable import DropboxAgent

@Suite(.tags(.unit)) struct StrictJSONParserTests {
    func parse(_ s: String) throws(JSONSyntaxError) -> JSONValue { try StrictJSONParser.parse(Array(s.utf8)) }

    @Test func parsesNestedDocuments() throws {
        let v = try parse(#"{"a": [1, -2.5e3, true, null, "x\u00e9\n"], "b": {}}"#)
        #expect(v["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .null, .string("xé\n")]))
        #expect(v["b"] == .object([]))
    }

    @Test(arguments: [
        #"{"mous": "uid://A001/X1284/X265f"}"#,
        #"{"a": [1, 2, {"b": "c"}], "d": "é"}"#,
    ])
    func everyTruncationOfAValidDocumentIsIncompleteNeverValid(document: String) {
        let bytes = Array(document.utf8)
        for cut in 0..<bytes.count {
            do {
                _ = try StrictJSONParser.parse(Array(bytes[..<cut]))
                Issue.record("a prefix of \(cut) bytes parsed as complete")
            } catch {
                #expect(error.truncated, "prefix \(cut): \(error)")
            }
        }
    }

    @Test func rejectsWhatFoundationWouldTolerate() {
        let cases: [(String, String)] = [
            (#"{"a": 1, "a": 2}"#, "duplicate member"),
            (#"{"a": 1} {"b": 2}"#, "after the JSON document"),
            (#"{"a": 01}"#, "expected ','"),
            ("{\"a\": \"\u{01}\"}", "control character"),
            (#"{"a": "\ud800"}"#, "surrogate"),
        ]
        for (text, fragment) in cases {
            #expect(throws: JSONSyntaxError.self) { try parse(text) }
            do { _ = try parse(text) } catch { #expect(error.description.contains(fragment), "\(text): \(error)") }
        }
    }

    @Test func rejectsInvalidUTF8AndDeepNesting() {
        #expect(throws: JSONSyntaxError.self) {
            try StrictJSONParser.parse([0x7B, 0x22, 0x61, 0x22, 0x3A, 0x22, 0xC3, 0x28, 0x22, 0x7D])
        }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        do {
            _ = try parse(deep)
            Issue.record("deep nesting accepted")
        } catch {
            #expect(error.message.contains("nesting"))
            #expect(!error.truncated)
        }
    }

    @Test func reportsLineAndColumn() {
        do {
            _ = try parse("{\n  \"a\": tru\n}")
            Issue.record("accepted")
        } catch {
            #expect(error.line == 2)
            #expect(error.column == 11)  // where "true" broke off
        }
    }
}

@Suite(.tags(.unit)) struct RequestParserTests {
    static let examples = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("examples/requests")

    static func files(_ sub: String) -> [String] {
        let dir = sub.isEmpty ? examples : examples.appendingPathComponent(sub)
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".json") }
            .sorted()
            .map { dir.appendingPathComponent($0).path }
    }

    @Test func thereAreExamples() {
        #expect(Self.files("").count >= 6)
        #expect(Self.files("invalid").count >= 8)
    }

    @Test(arguments: files(""))
    func everyExampleIsValid(path: String) throws {
        let data = try #require(FileManager.default.contents(atPath: path))
        #expect(throws: Never.self) { try RequestParser.parse([UInt8](data)) }
    }

    @Test(arguments: files("invalid"))
    func everyInvalidExampleIsRejectedWithAPath(path: String) throws {
        let data = try #require(FileManager.default.contents(atPath: path))
        do {
            _ = try RequestParser.parse([UInt8](data))
            Issue.record("\(path) accepted")
        } catch {
            #expect(!error.problems.isEmpty)
            #expect(error.problems.allSatisfy { $0.path.hasPrefix("$") })
        }
    }

    @Test func nativeFormIsNormalised() throws {
        let parsed = try RequestParser.parse(
            Array(
                #"{"mous":"uid://A001/X1284/X265f","email":["a@b.org"],"requestId":"r1","casa":"pipeline-6.5","delivery":{"format":"tar"}}"#
                    .utf8))
        #expect(parsed.request.form == .native)
        #expect(parsed.request.mous == "uid://A001/X1284/X265f")
        #expect(parsed.request.email == ["a@b.org"])
        #expect(parsed.request.requestId == "r1")
        #expect(parsed.request.casa == .name("pipeline-6.5"))
        #expect(parsed.request.deliveryFormat == .tar)
    }

    @Test func deliveryContentAndAverage() throws {
        let parsed = try RequestParser.parse(
            Array(
                #"{"mous":"uid://A001/X1284/X265f","delivery":{"content":["contsub","targets"],"format":"tgz","average":{"time":"30s","channels":4}}}"#
                    .utf8))
        #expect(parsed.request.content == [.targets, .contsub])
        #expect(parsed.request.deliveryFormat == .tgz && parsed.choseDeliveryFormat)
        #expect(parsed.request.deliveryAverage == .init(time: "30s", channels: 4))
        let single = try RequestParser.parse(
            Array(#"{"mous":"uid://A001/X1284/X265f","delivery":{"content":"science"}}"#.utf8))
        #expect(single.request.content == [.science] && !single.choseDeliveryFormat)
        #expect(
            try RequestParser.parse(Array(#"{"mous":"uid://A001/X1284/X265f"}"#.utf8)).request.content == [.calibrated])
        for (text, path) in [
            (#"{"mous":"uid://A001/X1284/X265f","delivery":{"average":{"channels":4}}}"#, "$.delivery.average"),
            (
                #"{"mous":"uid://A001/X1284/X265f","delivery":{"content":"calibrated","average":{"time":"30s"}}}"#,
                "$.delivery.average"
            ),
            (
                #"{"mous":"uid://A001/X1284/X265f","delivery":{"content":["science"],"average":{"channels":1}}}"#,
                "$.delivery.average.channels"
            ),
            (
                #"{"mous":"uid://A001/X1284/X265f","delivery":{"content":["science"],"average":{"time":"30"}}}"#,
                "$.delivery.average.time"
            ),
            (
                #"{"mous":"uid://A001/X1284/X265f","delivery":{"content":["science","science"]}}"#,
                "$.delivery.content[1]"
            ),
            (#"{"mous":"uid://A001/X1284/X265f","delivery":{"content":["images"]}}"#, "$.delivery.content[0]"),
            (#"{"mous":"uid://A001/X1284/X265f","delivery":{"content":[]}}"#, "$.delivery.content"),
        ] {
            do {
                _ = try RequestParser.parse(Array(text.utf8))
                Issue.record("accepted: \(text)")
            } catch {
                #expect(error.problems.map(\.path).contains(path), "\(text): \(error.problems)")
            }
        }
    }

    @Test func reportsEveryProblemNotJustTheFirst() {
        do {
            _ = try RequestParser.parse(
                Array(#"{"mous": 5, "email": ["x"], "delivery": {"format": "zip", "speed": 1}, "extra": true}"#.utf8))
            Issue.record("accepted")
        } catch {
            let paths = Set(error.problems.map(\.path))
            #expect(paths == ["$.mous", "$.email[0]", "$.delivery.format", "$.delivery.speed", "$.extra"])
        }
    }

    @Test func workflowEventIgnoresUnknownFieldsAndMapsTheContract() throws {
        let text = #"""
            {"eventName": "runAlmaBasicRestoreWorkflow", "type": "edu.nrao.archive.workflow.messaging.commands.StartWorkflow",
             "additionalPaths": [], "future": 1,
             "metadata": {"workflowName": "AlmaOusRestoreWorkflow", "processingSite": "NAASC", "deliveryFormat": "CMS",
               "telescope": "ALMA", "fileSetIds": ["uid://A002/Xd248b5/Xa7a"], "ousStatusId": "uid://A001/X12d1/X23e",
               "projectCodeOrDataType": "2017.1.00370.S", "cliCorrId": "abc-123", "casaHome": "/opt/casa/6.5",
               "email": "a@b.org, c@d.org", "newField": {"x": 1}}}
            """#
        let parsed = try RequestParser.parse(Array(text.utf8))
        #expect(parsed.request.form == .workflowEvent)
        #expect(parsed.request.mous == "uid://A001/X12d1/X23e")
        #expect(parsed.request.requestId == "abc-123")
        #expect(parsed.request.casa == .home("/opt/casa/6.5"))
        #expect(parsed.request.fileSetIds == ["uid://A002/Xd248b5/Xa7a"])
        #expect(parsed.request.projectCode == "2017.1.00370.S")
        #expect(parsed.request.email == ["a@b.org", "c@d.org"])
        #expect(Set(parsed.ignoredFields) == ["$.future", "$.metadata.newField"])
    }

    @Test func headerInjectionInAddressesIsRejected() {
        for address in ["a@b.org\r\nBcc: x@y.org", "<a@b.org>", "a b@c.org", "a@b.org,c@d.org"] {
            #expect(!RequestRecipient.isValid(address), "\(address)")
        }
        // The same parser as the mail that is sent: a form the mailer would refuse is refused at intake.
        for address in [".a@b.org", "a..b@c.org", "a@localhost", "a@[127.0.0.1]", "Name <a@b.org>"] {
            #expect(!RequestRecipient.isValid(address), "\(address)")
        }
        for address in ["a@b.org", "first.last+tag@sub.example.org"] {
            #expect(RequestRecipient.isValid(address), "\(address)")
        }
    }
}

@Suite(.tags(.unit)) struct SpoolNamesTests {
    @Test func classifiesTheContractNames() {
        #expect(SpoolNames.classify("req-1.json") == .request(name: "req-1"))
        #expect(SpoolNames.classify("req-1.cancel") == .cancel(name: "req-1"))
        #expect(SpoolNames.classify("req-1.status.json") == .ignored)
        for temp in [
            ".req.json.wYsntx", "req.json.tmp", "req.json.part", "req.json.filepart", "req.json.crdownload",
            "req.json~", ".req.json.swp", "sedAb12Cd", ".nfs000123", "req.json.PART", "req.json.Tmp",
            "req.json.FilePart",
        ] {
            #expect(SpoolNames.classify(temp) == .ignored, "\(temp)")
        }
        if case .badRequestName = SpoolNames.classify("bad name.json") {} else { Issue.record("space accepted") }
        #expect(!SpoolNames.isValidName("x.status"))
        #expect(SpoolNames.classify("README.txt") == .unrelated)
        #expect(SpoolNames.isValidName(String(repeating: "a", count: 128)))
        #expect(!SpoolNames.isValidName(String(repeating: "a", count: 129)))
        #expect(!SpoolNames.isValidName("-starts-with-dash"))
    }
}

@Suite(.tags(.unit)) struct RequestDigestTests {
    @Test func knownAnswers() {
        #expect(RequestDigest.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            RequestDigest.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(
            RequestDigest.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
    }
}
