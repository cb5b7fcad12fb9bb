import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

#if canImport(Glibc)
import Glibc
#endif

@Suite(
    "Modular runner and CASA environment", .serialized, .timeLimit(.minutes(2)), .tags(.integration),
    .selected(.integration))
struct ModularRunnerTests {
    let dir: String

    init() throws {
        dir = try CASAFixtures.temporaryDirectory("modular")
    }

    /// A real (pip-less) venv with a casasiteconfig.py, made with the system python.
    func makeVenv() async throws -> String {
        let venv = dir + "/venv"
        try await CASAEnvironment.install(venv: venv, programDir: CASAFixtures.fakeCasa + "/modular")
        // The fake installer only writes casasiteconfig.py; make the venv itself for real.
        let status = try await runPython(["-m", "venv", "--without-pip", venv])
        try #require(status == 0, "python3 -m venv failed")
        return venv
    }

    func runPython(_ arguments: [String]) async throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }

    @Test func runsTheProgramWithTheContractEnvironment() async throws {
        let venv = try await makeVenv()
        let tree = try CASAFixtures.makeTree(in: dir)
        setenv("RUNNER_TEST_LEAK_CHECK", "agent-only", 1)
        let casa = CASAInstallation(
            name: "modular", kind: .modular, home: venv, version: "6.7.0.31",
            programDir: CASAFixtures.fakeCasa + "/modular", extraEnvironment: ["SITE_EXTRA": "x", "DISPLAY": ":5"])
        let reporter = RecordingReporter()
        let result = try await ModularRunner(
            installation: casa, gracePeriod: .seconds(2), parallelExecBlocks: 3, logger: CASAFixtures.logger
        )
        .run(tree.invocation(), reporter: reporter)
        let output = (try? String(contentsOfFile: result.stdoutLog, encoding: .utf8)) ?? ""
        #expect(result.exitStatus == .exited(0), "fake restore_mous.py output:\n\(output)")
        #expect(
            result.argv == [
                venv + "/bin/python3", CASAFixtures.fakeCasa + "/modular/restore_mous.py", "--parallel", "3", tree.ppr,
            ])
        #expect(
            ModularRunner(installation: casa, parallelExecBlocks: 0, logger: CASAFixtures.logger).parallelExecBlocks
                == 1)
        #expect(ModularRunner.defaultParallelExecBlocks >= 1)
        #expect(result.environment["CASASITECONFIG"] == venv + "/casasiteconfig.py")
        #expect(result.environment["DISPLAY"] == nil)
        #expect(result.environment["RUNNER_TEST_LEAK_CHECK"] == nil)
        #expect(reporter.all.compactMap(\.fraction) == [0, 1])
        let log = try String(contentsOfFile: try #require(result.casaLogs.first), encoding: .utf8)
        #expect(log.contains("extra=x"), "configured extra variables reach CASA")
    }

    @Test func environmentCheckAndInstallReportThroughCasaenv() async throws {
        let programDir = CASAFixtures.fakeCasa + "/modular"
        let venv = dir + "/env-venv"
        let before = await CASAEnvironment.check(venv: venv, programDir: programDir)
        #expect(!before.ok)
        #expect(before.problems.first?.contains("no casasiteconfig.py") == true)
        try await CASAEnvironment.install(venv: venv, programDir: programDir)
        let after = await CASAEnvironment.check(venv: venv, programDir: programDir)
        #expect(after.ok, "\(after.problems)")
        #expect(after.casatools == "6.7.0.31")

        let failing = try CASAFixtures.temporaryDirectory("envfail")
        _ = FileManager.default.createFile(atPath: failing + "/FAIL", contents: Data())
        await #expect {
            try await CASAEnvironment.install(venv: failing + "/venv", programDir: programDir)
        } throws: { error in
            guard let error = error as? RestoreError else { return false }
            return error.code == .casaEnvironmentFailed && error.message.contains("no matching distribution")
        }
        let missing = await CASAEnvironment.check(venv: venv, programDir: dir + "/nowhere")
        #expect(!missing.ok)
    }
}
