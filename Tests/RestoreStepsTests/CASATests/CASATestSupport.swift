import Foundation
import Logging
import Synchronization
import Testing
import DropboxTestKit

@testable import RestoreSteps

/// Paths and helpers shared by the CASA tests.
enum CASAFixtures {
    /// `Tests/Fixtures/fake-casa`.
    static let fakeCasa: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }  // CASATests, RestoreStepsTests, Tests
        return url.appendingPathComponent("Fixtures/fake-casa").path
    }()

    static let logger = Logger(label: "casa-tests", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A fresh temporary directory (the shared kit's).
    static func temporaryDirectory(_ label: String = #function) throws -> String {
        try TemporaryDirectory("casa-" + label).path
    }

    /// A fake monolithic CASA home in `dir`: `bin/casa` and `runpipeline.py` linked to the fixture, `VERSION` and
    /// `behaviour` written.
    static func makeFakeHome(in dir: String, version: String, behaviour: String) throws -> String {
        let home = dir + "/casa-\(version)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: home + "/bin", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: home + "/pipeline/pipeline/recipes", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: home + "/bin/casa", withDestinationPath: fakeCasa + "/bin/casa")
        try fm.createSymbolicLink(
            atPath: home + "/pipeline/pipeline/runpipeline.py",
            withDestinationPath: fakeCasa + "/pipeline/pipeline/runpipeline.py")
        try version.write(toFile: home + "/VERSION", atomically: true, encoding: .utf8)
        try setBehaviour(behaviour, home: home)
        return home
    }

    static func setBehaviour(_ behaviour: String, home: String) throws {
        try (behaviour + "\n").write(toFile: home + "/behaviour", atomically: true, encoding: .utf8)
    }

    /// A working tree `<root>/<relative>/{rawdata/<asdm>…, working, products}`, a logs dir, and a restore PPR.
    struct Tree {
        var root: String
        var relativePath: String
        var logs: String
        var ppr: String
        var asdmNames: [String]
        var mous: String { root + "/" + relativePath }
        var working: String { mous + "/working" }
        var products: String { mous + "/products" }

        func invocation(timeout: Duration = .seconds(60)) -> CASAInvocation {
            CASAInvocation(
                ppr: ppr, root: root, relativePath: relativePath, logsDirectory: logs,
                timeout: timeout, asdmNames: asdmNames)
        }
    }

    static func makeTree(
        in dir: String, asdmNames: [String] = ["uid___A002_X1_X1", "uid___A002_X1_X2"],
        sessions: [[String]]? = nil, pprOverride: String? = nil
    ) throws -> Tree {
        let relative =
            "2023.1.00042.S_2024_01_01T00_00_00.000/SOUS_uid___A001_X3f01_X1a3/GOUS_uid___A001_X3f01_X1a4/MOUS_uid___A001_X3f01_X1a5"
        let root = dir + "/root"
        let mous = root + "/" + relative
        let fm = FileManager.default
        for sub in ["working", "products"] {
            try fm.createDirectory(atPath: mous + "/" + sub, withIntermediateDirectories: true)
        }
        for name in asdmNames {
            try fm.createDirectory(atPath: mous + "/rawdata/" + name, withIntermediateDirectories: true)
        }
        let logs = dir + "/logs"
        try fm.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let ppr = mous + "/working/PPR_uid___A001_X3f01_X1a8.xml"
        let xml = pprOverride ?? pprXML(relativePath: relative, asdmNames: asdmNames, sessions: sessions ?? [asdmNames])
        try xml.write(toFile: ppr, atomically: true, encoding: .utf8)
        return Tree(root: root, relativePath: relative, logs: logs, ppr: ppr, asdmNames: asdmNames)
    }

    /// A restore PPR shaped like the pipeline expects (alma-restore.md §3).
    static func pprXML(relativePath: String, asdmNames: [String], sessions: [[String]]) -> String {
        let intents = sessions.enumerated().map { index, members in
            "<Intents><Keyword>SESSION_\(index + 1)</Keyword><Value>\(members.joined(separator: " | "))</Value></Intents>"
        }.joined()
        let asdms = asdmNames.map { name in
            let uid = "uid://" + name.dropFirst("uid___".count).replacingOccurrences(of: "_", with: "/")
            return
                "<AsdmIdentifier><AsdmRef><ExecBlockId>\(uid)</ExecBlockId></AsdmRef><AsdmDiskName>\(name)</AsdmDiskName></AsdmIdentifier>"
        }.joined()
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <SciPipeRequest xmlns="Alma/pipelinescience/SciPipeRequest">
              <ProjectSummary><ProposalCode>2023.1.00042.S</ProposalCode><Observatory>ALMA</Observatory><Telescope>ALMA</Telescope></ProjectSummary>
              <ProjectStructure><AlmaStructure><OUSStatusRef entityId="uid://A001/X3f01/X1a5" entityTypeName="OUSStatus"/></AlmaStructure></ProjectStructure>
              <ProcessingRequests><ProcessingRequest>
                <ProcessingIntents>\(intents)</ProcessingIntents>
                <ProcessingProcedure><ProcedureTitle>hifa_restore</ProcedureTitle>
                  <ProcessingCommand><Command>hifa_restoredata</Command><ParameterSet/></ProcessingCommand>
                </ProcessingProcedure>
                <DataSet><SchedBlockSet><SchedBlockIdentifier>
                  <RelativePath>\(relativePath)</RelativePath>
                  \(asdms)
                </SchedBlockIdentifier></SchedBlockSet></DataSet>
              </ProcessingRequest></ProcessingRequests>
            </SciPipeRequest>
            """
    }

    /// Living processes whose process group is `pgid`.
    static func livingGroupMembers(_ pgid: Int32) -> [Int32] { ProcessGroup(id: pgid).livingMembers }

    static func readInt(_ path: String) -> Int32? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// Polls `condition` every 50 ms until it holds or `limit` passes (the shared kit's ``eventually``).
    static func waitFor(_ limit: Duration, _ condition: () -> Bool) async -> Bool {
        await eventually(within: limit, every: .milliseconds(50), condition)
    }
}

/// Remembers every progress report.
final class RecordingReporter: StepReporter {
    private let reports = Mutex<[StepProgress]>([])
    func report(_ progress: StepProgress) { reports.withLock { $0.append(progress) } }
    var all: [StepProgress] { reports.withLock { $0 } }
}

/// A swift-log handler that keeps every record.
struct CapturingLogHandler: LogHandler {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: Logger.Metadata
    }

    final class Store: Sendable {
        let records = Mutex<[Record]>([])
        var all: [Record] { records.withLock { $0 } }
    }

    let store: Store
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        store.records.withLock { $0.append(Record(level: event.level, message: "\(event.message)", metadata: merged)) }
    }

    static func logger() -> (Logger, Store) {
        let store = Store()
        return (Logger(label: "capture", factory: { _ in CapturingLogHandler(store: store) }), store)
    }
}
