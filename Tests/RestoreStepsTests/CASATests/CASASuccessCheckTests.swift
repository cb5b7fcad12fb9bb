import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

@Suite(
    "CASA success checks: logs, measurement sets, progress", .serialized, .tags(.integration), .selected(.integration))
struct CASASuccessCheckTests {
    static let realMS = CASAFixtures.fakeCasa + "/real-ms"
    static let venvPython = "/tmp/casa-venv-probe/bin/python3"

    // MARK: CORRECTED_DATA detection

    @Test func committedRealTableDatFiles() throws {
        let calibrated = try #require(
            MeasurementSetColumns.columns(
                inTableDat: [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.realMS + "/calibrated.table.dat")))))
        #expect(calibrated.contains("CORRECTED_DATA"))
        #expect(calibrated.isSuperset(of: ["DATA", "FLAG", "UVW", "TIME", "ANTENNA1", "MODEL_DATA", "WEIGHT"]))
        #expect(calibrated.count == 24, "\(calibrated.sorted())")

        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.realMS + "/uncalibrated.table.dat")))
        let uncalibrated = try #require(MeasurementSetColumns.columns(inTableDat: bytes))
        #expect(!uncalibrated.contains("CORRECTED_DATA"))
        #expect(uncalibrated.contains("DATA"))
        #expect(uncalibrated.count == 22, "\(uncalibrated.sorted())")
        // Why a text search is wrong: the hypercolumn record still names the removed column.
        #expect(String(decoding: bytes, as: UTF8.self).contains("CORRECTED_DATA"))
    }

    @Test func littleEndianAndGarbage() {
        func le(_ s: String) -> [UInt8] {
            let n = UInt32(s.utf8.count)
            return [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n >> 16 & 0xFF), UInt8(n >> 24)] + Array(s.utf8)
        }
        let table: [UInt8] =
            [0xBE, 0xBE, 0xBE, 0xBE] + le("TableDesc")
            + le("ArrayColumnDesc<Complex ") + [1, 0, 0, 0] + le("CORRECTED_DATA")
            + le("ScalarColumnDesc<Int     ") + [1, 0, 0, 0] + le("ANTENNA1")
        #expect(MeasurementSetColumns.columns(inTableDat: table) == ["CORRECTED_DATA", "ANTENNA1"])
        #expect(MeasurementSetColumns.columns(inTableDat: Array("ArrayColumnDesc CORRECTED_DATA".utf8)) == nil)
        #expect(MeasurementSetColumns.columns(inTableDat: []) == nil)
        #expect(MeasurementSetColumns.columns(ofTableAt: "/nonexistent/x.ms") == nil)
    }

    @Test(
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: venvPython), "needs the CASA venv /tmp/casa-venv-probe"))
    func freshRealMeasurementSetsFromCasatools() async throws {
        let dir = try CASAFixtures.temporaryDirectory("realms")
        try FileManager.default.createDirectory(atPath: dir + "/home", withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.venvPython)
        process.arguments = [Self.realMS + "/make_ms.py", dir + "/out"]
        process.currentDirectoryURL = URL(fileURLWithPath: dir)
        process.environment = [
            "PATH": "/usr/bin:/bin", "HOME": dir + "/home", "LANG": "C.UTF-8", "MPLBACKEND": "Agg",
            "CASASITECONFIG": "/tmp/casa-venv-probe/casasiteconfig.py",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        process.waitUntilExit()
        try #require(process.terminationStatus == 0, "make_ms.py failed")
        #expect(
            MeasurementSetColumns.columns(ofTableAt: dir + "/out/calibrated.ms")?.contains("CORRECTED_DATA") == true)
        let uncalibrated = try #require(MeasurementSetColumns.columns(ofTableAt: dir + "/out/uncalibrated.ms"))
        #expect(!uncalibrated.contains("CORRECTED_DATA"))
        #expect(uncalibrated.contains("DATA"))
    }

    // MARK: SEVERE lines

    @Test func realTaiUtcWarningIsHarmless() {
        let findings = CASALogScanner.scan([Self.realMS + "/tai-utc-severe.log"])
        #expect(findings.decisive.isEmpty, "\(findings.decisive)")
        #expect(findings.harmlessCount == 3)
    }

    @Test func decisiveSevereLinesAreQuotedWithTheirPlace() throws {
        let dir = try CASAFixtures.temporaryDirectory("severe")
        let harmless = try String(contentsOfFile: Self.realMS + "/tai-utc-severe.log", encoding: .utf8)
        let log = dir + "/casa-20240101-000000.log"
        let text =
            harmless
            + "2024-01-01 00:00:05\tINFO\thifa_restoredata::casa\tTask hifa_restoredata complete\n"
            + "2024-01-01 00:00:06\tSEVERE\thifa_restoredata::casa\tException Reported: Error in hifa_restoredata: Traceback\n"
            + "2024-01-01 00:00:06\tSEVERE\thifa_restoredata::casa+\tKeyError: 'session_2'\n"
        try text.write(toFile: log, atomically: true, encoding: .utf8)
        let findings = CASALogScanner.scan([log])
        #expect(findings.harmlessCount == 3)
        #expect(findings.decisiveCount == 2)
        let first = try #require(findings.decisive.first)
        #expect(first.lineNumber == 5)
        #expect(first.origin == "hifa_restoredata::casa")
        #expect(first.message.hasPrefix("Exception Reported"))

        // Console form with spaces, and a line that only mentions SEVERE in its text.
        let console = dir + "/casa-stdout.log"
        try
            ("2024-01-01 00:00:01 INFO casa the word SEVERE in a message is not a SEVERE line\n"
            + "2024-01-01 00:00:02 SEVERE flagmanager::::casa Version name 'Pipeline_Final' does not exist\n")
            .write(toFile: console, atomically: true, encoding: .utf8)
        let consoleFindings = CASALogScanner.scan([console])
        #expect(consoleFindings.decisive.map(\.lineNumber) == [2])
    }

    @Test func harmlessPatternsLiveInOnePlace() {
        #expect(HarmlessSevere.isHarmless("Leap second table TAI_UTC seems out-of-date."))
        #expect(!HarmlessSevere.isHarmless("Error executing pipeline task hifa_restoredata."))
        #expect(!HarmlessSevere.patterns.isEmpty)
    }

    // MARK: PROGRESS lines

    @Test func progressLines() {
        let p = ProgressLine.parse("PROGRESS 3 4 applycal uid___A002_X1_X1\r\n")
        #expect(p?.fraction == 0.75)
        #expect(p?.message == "applycal uid___A002_X1_X1")
        #expect(ProgressLine.parse("PROGRESS 0 0")?.fraction == nil)
        #expect(ProgressLine.parse("PROGRESS 0 0") != nil)
        #expect(ProgressLine.parse("PROGRESS 5 2 over")?.fraction == 1)
        #expect(ProgressLine.parse("PROGRESS x 2 y") == nil)
        #expect(ProgressLine.parse("progress 1 2 y") == nil)
        #expect(ProgressLine.parse("PROGRESS -1 2 y") == nil)
    }
}
