import Foundation
import InotifyWatcher
import RestoreSteps
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// Refusals that belong at intake, not after planning: an unconfigured CASA, a request file name that is not
/// UTF-8, length limits in bytes.
@Suite("Intake refusals", .tags(.endToEnd), .selected(.endToEnd))
struct IntakeRefusalTests {
    static let event = #"""
        {"eventName": "runAlmaBasicRestoreWorkflow", "type": "edu.nrao.archive.workflow.messaging.commands.StartWorkflow",
         "metadata": {"ousStatusId": "uid://A001/X1284/X265f", "email": "pi@example.org", "casaHome": "/opt/casa-nowhere"}}
        """#

    @Test func aRequestNamingAnUnconfiguredCASAIsRejectedAtIntake() async throws {
        let h = try AgentHarness(settle: 0.1)
        h.start()
        try h.drop("native.json", #"{"mous": "uid://A001/X1284/X265f", "casa": "casa-6.9-nowhere"}"#)
        try h.drop("event.json", Self.event)
        try h.drop("fine.json", #"{"mous": "uid://A001/X1284/X265f", "casa": "modular"}"#)
        let native = try await h.waitForState("native", .rejected)
        #expect(native.error?.code == "casaNotConfigured")
        #expect(native.error?.message.contains("casa-6.9-nowhere") == true, "\(native.error?.message ?? "")")
        #expect(native.error?.hint?.contains("modular") == true, "the hint lists the configured ones")
        let event = try await h.waitForState("event", .rejected)
        #expect(event.error?.code == "casaNotConfigured")
        #expect(event.error?.message.contains("/opt/casa-nowhere") == true)
        _ = try await h.waitForState("fine", .succeeded)
        try await h.shutdown()
        #expect(h.log.steps(for: "native").isEmpty && h.log.steps(for: "event").isEmpty, "no step ran")
    }

    @Test func aRequestFileNameThatIsNotUTF8IsMovedAsideWithAReason() async throws {
        let h = try AgentHarness(settle: 0.1)
        h.start()
        // "caf\xE9.json": Latin-1, not UTF-8.
        let bytes = Array((h.spool + "/caf").utf8) + [0xE9] + Array(".json".utf8)
        let path = bytes.map { CChar(bitPattern: $0) } + [0]
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
        #expect(fd >= 0)
        _ = AgentHarness.validRequest.withCString { write(fd, $0, strlen($0)) }
        close(fd)
        let rejected = h.spool + "/.dropbox-agent/rejected"
        var reason: String?
        for _ in 0..<200 where reason == nil {
            try await Task.sleep(for: .milliseconds(50))
            let names = (try? FileManager.default.contentsOfDirectory(atPath: rejected)) ?? []
            if let file = names.first(where: { $0.hasSuffix(".reason.txt") }) {
                reason = try String(contentsOfFile: rejected + "/" + file, encoding: .utf8)
            }
        }
        try await h.shutdown()
        let text = try #require(reason, "moved aside within 10 s")
        #expect(text.contains("not valid UTF-8") && text.contains("caf\\xE9.json"), "\(text)")
        var st = stat()
        #expect(lstat(path, &st) != 0, "no longer in the spool")
    }

    @Test func fileNamesThatAreNotUTF8RoundTrip() {
        let bytes: [UInt8] = Array("caf".utf8) + [0xE9, 0xFF] + Array("é.json".utf8) + [0xC3]
        let name = FileName.decode(bytes)
        #expect(!FileName.isValidUTF8(name))
        #expect(FileName.bytes(of: name) == bytes)
        #expect(name.hasSuffix("é.json\u{10FFC3}"))
        #expect(FileName.decode(Array("ok.json".utf8)) == "ok.json")
        #expect(SpoolNames.classify(name) == .ignored || SpoolNames.classify(name + ".json") != .request(name: name))
        guard
            case .badRequestName(let reason) = SpoolNames.classify(
                FileName.decode(Array("caf".utf8) + [0xE9] + Array(".json".utf8)))
        else {
            Issue.record("a non-UTF-8 *.json is a bad request name")
            return
        }
        #expect(reason.contains("not valid UTF-8"))
    }

    @Test func lengthLimitsCountBytesNotGraphemeClusters() throws {
        let family = "👨‍👩‍👧‍👦"  // one grapheme cluster, 25 bytes
        let id = String(repeating: family, count: 10)  // 10 characters, 250 bytes
        #expect(id.count == 10 && id.utf8.count == 250)
        let rejection = try #require(throws: RequestRejection.self) {
            try RequestParser.parse(Array(#"{"mous": "uid://A001/X1284/X265f", "requestId": "\#(id)"}"#.utf8))
        }
        #expect(
            rejection.message.contains("$.requestId") && rejection.message.contains("bytes"), "\(rejection.message)")
        _ = try RequestParser.parse(
            Array(#"{"mous": "uid://A001/X1284/X265f", "requestId": "\#(String(repeating: family, count: 5))"}"#.utf8))
        let home = "/" + String(repeating: family, count: 200)  // 201 characters, 5001 bytes
        let event = Self.event.replacingOccurrences(of: "/opt/casa-nowhere", with: home)
        let refused = try #require(throws: RequestRejection.self) { try RequestParser.parse(Array(event.utf8)) }
        #expect(refused.message.contains("$.metadata.casaHome"))
        #expect(
            !RequestRecipient.isValid(
                String(repeating: "a", count: 64) + "@" + String(repeating: "b", count: 190) + ".org"))
    }
}
