import Foundation
import Delivery
import RestoreSteps
import Testing
import DropboxTestKit

@testable import DropboxAgent

/// A failure on a full filesystem is said in terms of ENOSPC and the path, on a real full tmpfs (needs root).
@Suite(.serialized, .tags(.endToEnd), .selected(.endToEnd)) struct DiskSpaceTests {
    private func mounted(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("full-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir])
        defer { try? run("/usr/bin/umount", ["-l", dir]) }
        try body(dir)
    }

    private func run(_ program: String, _ arguments: [String]) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: program)
        p.arguments = arguments
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "\(program) \(arguments) failed; this test needs root")
    }

    /// Fills `dir`'s filesystem until write(2) says ENOSPC.
    private func fill(_ dir: String) {
        let fd = open(dir + "/filler", O_WRONLY | O_CREAT, 0o644)
        defer { close(fd) }
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
    }

    @Test func aCASAKilledOnAFullDiskSaysTheDiskWasFull() throws {
        try mounted { dir in
            let area = dir + "/restores/job"
            try FileManager.default.createDirectory(atPath: area, withIntermediateDirectories: true)
            let plain = RestoreError("casaFailed", "CASA was killed by signal 6", step: .casa)
            #expect(DiskSpace.annotate(plain, paths: [area]).code == "casaFailed", "not full: unchanged")
            fill(dir)
            let said = DiskSpace.annotate(plain, paths: [area])
            #expect(said.code == DiskSpace.code)
            #expect(said.message.hasPrefix("ENOSPC: no space left on device on the filesystem of \(area)"))
            #expect(said.message.contains("most likely caused by the full disk"))
            #expect(said.message.hasSuffix("CASA was killed by signal 6"))
            #expect(said.isTransient && said.step == .casa)
            let decision = RestoreError("unknownMous", "the site's catalogue has no MOUS", step: .prepare)
            #expect(
                DiskSpace.annotate(decision, paths: [area]).code == "unknownMous",
                "a decision is never blamed on the disk")
        }
    }

    @Test func aWriteThatSaidENOSPCIsRecognised() throws {
        try mounted { dir in
            fill(dir)
            do {
                try Delivery.AtomicFile.write(Data(repeating: 1, count: 10000), to: dir + "/status.json")
                Issue.record("a write to a full filesystem succeeded")
            } catch {
                #expect(DiskSpace.isNoSpace(error))
                #expect("\(error)".contains(dir))
            }
        }
    }
}
