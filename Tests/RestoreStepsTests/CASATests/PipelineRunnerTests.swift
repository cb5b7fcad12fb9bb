import Foundation
import Logging
import Testing
import DropboxTestKit

@testable import RestoreSteps

@Suite(
    "Pipeline runner against the fake CASA", .serialized, .timeLimit(.minutes(2)), .tags(.integration),
    .selected(.integration))
struct PipelineRunnerTests {
    let dir: String

    init() throws {
        dir = try CASAFixtures.temporaryDirectory("pipeline")
        #expect(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/xvfb-run"),
            "xvfb-run is missing: apt-get install xvfb xauth")
    }

    func installation(home: String, version: String, useXvfb: Bool) -> CASAInstallation {
        CASAInstallation(name: "fake-\(version)", kind: .pipeline, home: home, version: version, useXvfb: useXvfb)
    }

    func runner(_ installation: CASAInstallation, grace: Duration = .seconds(2)) -> PipelineRunner {
        PipelineRunner(installation: installation, gracePeriod: grace, logger: CASAFixtures.logger)
    }

    @Test func casa6UnderRealXvfbRunSucceeds() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "succeed")
        let tree = try CASAFixtures.makeTree(in: dir)
        let casa = installation(home: home, version: "6.5.4-9", useXvfb: true)
        let reporter = RecordingReporter()
        let result = try await runner(casa).run(tree.invocation(), reporter: reporter)
        let output = (try? String(contentsOfFile: result.stdoutLog, encoding: .utf8)) ?? ""

        #expect(result.exitStatus == .exited(0), "fake CASA output:\n\(output)")
        #expect(!result.timedOut)
        #expect(
            result.argv == [
                "/usr/bin/xvfb-run", "-a", home + "/bin/casa", "--nogui", "--nologger", "-c",
                home + "/pipeline/pipeline/runpipeline.py", tree.ppr,
            ])
        #expect(result.environment["SCIPIPE_ROOTDIR"] == tree.root)
        #expect(result.environment["SCIPIPE_LOGDIR"] == tree.logs)
        #expect(result.environment["SCIPIPE_SCRIPTDIR"] == home + "/pipeline/pipeline/recipes")
        #expect(result.environment["HOME"] == tree.logs + "/home")
        #expect(result.environment["DISPLAY"] == nil)
        #expect(
            Set(result.environment.keys) == [
                "PATH", "LANG", "HOME", "SCIPIPE_ROOTDIR", "SCIPIPE_LOGDIR", "SCIPIPE_SCRIPTDIR",
            ])
        #expect(result.stdoutLog == tree.logs + "/casa-stdout.log")
        #expect(result.casaLogs.count == 1)

        let verdict = CASASuccessCheck.evaluate(
            result: result, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.isSuccess, "\(verdict.problems)")
        #expect(verdict.measurementSets == tree.asdmNames.map { tree.working + "/" + $0 + ".ms" })
        #expect(verdict.harmlessSevereCount >= 3, "the TAI_UTC lines are seen and ignored")

        let fractions = reporter.all.compactMap(\.fraction)
        #expect(fractions == [0, 0.5, 1])
        #expect(reporter.all.last?.message == "restored uid___A002_X1_X2")
    }

    @Test func casa5GetsPipelineFlag() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "5.1.1-5", behaviour: "succeed")
        let tree = try CASAFixtures.makeTree(in: dir)
        let (logger, records) = CapturingLogHandler.logger()
        let result = try await PipelineRunner(
            installation: installation(home: home, version: "5.1.1-5", useXvfb: false), logger: logger
        ).run(tree.invocation(), reporter: SilentReporter())
        let output = (try? String(contentsOfFile: result.stdoutLog, encoding: .utf8)) ?? ""
        #expect(result.exitStatus == .exited(0), "fake CASA output:\n\(output)")
        #expect(
            result.argv == [
                home + "/bin/casa", "--nogui", "--nologger", "--pipeline", "-c",
                home + "/pipeline/pipeline/runpipeline.py", tree.ppr,
            ])

        // The argv and the environment are logged, as given to the process.
        let start = try #require(records.all.first { $0.message == "starting CASA" })
        #expect(start.metadata["casa.argv"] == .array(result.argv.map { .string($0) }))
        #expect(start.metadata["casa.env"] == .dictionary(result.environment.mapValues { .string($0) }))
        #expect(start.metadata["casa.installation"] == "fake-5.1.1-5")
        #expect(
            records.all.contains { $0.message == "CASA ended" && $0.metadata["casa.exitStatus"] == "exit status 0" })
        #expect(output.hasPrefix("# dropbox-agent: argv: " + result.argv.joined(separator: " ")))
        let verdict = CASASuccessCheck.evaluate(
            result: result, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.isSuccess, "\(verdict.problems)")
    }

    /// Negative controls: the fake really checks what it is given, and a rejected run is a failure.
    @Test func fakeRejectsWrongFlagAndBadPPR() async throws {
        // CASA 6 on disk but configured as CASA 5: `--pipeline` is wrong for it.
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "succeed")
        let tree = try CASAFixtures.makeTree(in: dir)
        let wrong = try await runner(installation(home: home, version: "5.1.1-5", useXvfb: false))
            .run(tree.invocation(), reporter: SilentReporter())
        #expect(wrong.exitStatus == .exited(97))
        let output = try String(contentsOfFile: wrong.stdoutLog, encoding: .utf8)
        #expect(output.contains("REJECTED: argv"))
        let verdict = CASASuccessCheck.evaluate(
            result: wrong, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.error?.code == .casaFailed)
        #expect(verdict.error?.hint?.contains(wrong.stdoutLog) == true)

        // SESSION_1 missing: the pipeline would silently ignore SESSION_2.
        let dir2 = try CASAFixtures.temporaryDirectory("badppr")
        let tree2 = try CASAFixtures.makeTree(in: dir2, sessions: [])
        let xml = try String(contentsOfFile: tree2.ppr, encoding: .utf8).replacingOccurrences(
            of: "<ProcessingIntents></ProcessingIntents>",
            with:
                "<ProcessingIntents><Intents><Keyword>SESSION_2</Keyword><Value>uid___A002_X1_X1</Value></Intents></ProcessingIntents>"
        )
        try xml.write(toFile: tree2.ppr, atomically: true, encoding: .utf8)
        let bad = try await runner(installation(home: home, version: "6.5.4-9", useXvfb: false))
            .run(tree2.invocation(), reporter: SilentReporter())
        #expect(bad.exitStatus == .exited(97))
        #expect(try String(contentsOfFile: bad.stdoutLog, encoding: .utf8).contains("SESSION_n not contiguous"))
    }

    @Test(arguments: [
        ("errorexit", RestoreError.Code.casaErrorExit),
        ("severe", .casaSevere),
        ("no-ms", .msMissing),
        ("uncalibrated", .msNotCalibrated),
        ("exit1", .casaSevere),
    ])
    func behaviourMapsToVerdict(_ behaviour: String, _ code: RestoreError.Code) async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: behaviour)
        let tree = try CASAFixtures.makeTree(in: dir)
        let result = try await runner(installation(home: home, version: "6.5.4-9", useXvfb: false))
            .run(tree.invocation(), reporter: SilentReporter())
        let verdict = CASASuccessCheck.evaluate(
            result: result, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(!verdict.isSuccess)
        #expect(verdict.error?.code == code, "\(verdict.problems)")
        switch behaviour {
        case "errorexit":
            #expect(result.exitStatus == .exited(0), "exit status 0 must not hide the errorexit marker")
            #expect(verdict.error?.message.contains("errorexit-") == true)
        case "severe":
            #expect(result.exitStatus == .exited(0))
            #expect(verdict.error?.message.contains("Error executing pipeline task hifa_restoredata.") == true)
            #expect(verdict.error?.hint?.contains(result.casaLogs.first ?? "?") == true)
            #expect(verdict.measurementSets.count == 2, "the MSes exist; the SEVERE line alone fails the run")
        case "no-ms":
            #expect(verdict.error?.message.contains(tree.working + "/uid___A002_X1_X1.ms") == true)
            #expect(verdict.problems.filter { $0.code == .msMissing }.count == 2)
        case "exit1":
            #expect(result.exitStatus == .exited(1))
            #expect(verdict.problems.contains { $0.code == .casaFailed })
        default:
            break
        }
    }

    @Test func missingFlagVersionsFail() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "succeed")
        let tree = try CASAFixtures.makeTree(in: dir)
        let result = try await runner(installation(home: home, version: "6.5.4-9", useXvfb: false))
            .run(tree.invocation(), reporter: SilentReporter())
        try FileManager.default.removeItem(atPath: tree.working + "/uid___A002_X1_X2.ms.flagversions")
        let verdict = CASASuccessCheck.evaluate(
            result: result, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.error?.code == .flagVersionsMissing)
        #expect(verdict.measurementSets == [tree.working + "/uid___A002_X1_X1.ms"])
    }

    @Test func errorExitInProductsFails() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "succeed")
        let tree = try CASAFixtures.makeTree(in: dir)
        let result = try await runner(installation(home: home, version: "6.5.4-9", useXvfb: false))
            .run(tree.invocation(), reporter: SilentReporter())
        _ = FileManager.default.createFile(atPath: tree.products + "/errorexit-20240101T000000.txt", contents: Data())
        let verdict = CASASuccessCheck.evaluate(
            result: result, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.error?.code == .casaErrorExit)
        #expect(verdict.error?.message.contains(tree.products + "/errorexit-20240101T000000.txt") == true)
    }

    @Test func missingInstallationPartsAreReportedBeforeRunning() async throws {
        let tree = try CASAFixtures.makeTree(in: dir)
        let casa = installation(home: dir + "/no-such-casa", version: "6.5.4-9", useXvfb: false)
        await #expect {
            _ = try await runner(casa).run(tree.invocation(), reporter: SilentReporter())
        } throws: { ($0 as? RestoreError)?.code == .casaUnavailable }
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "succeed")
        var noXvfb = installation(home: home, version: "6.5.4-9", useXvfb: true)
        noXvfb.xvfbRun = "no-such-xvfb-run"
        await #expect {
            _ = try await runner(noXvfb).run(tree.invocation(), reporter: SilentReporter())
        } throws: { ($0 as? RestoreError)?.code == .casaUnavailable }
    }

    @Test func rerunAfterAFailedAttemptIsJudgedOnItsOwn() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "severe")
        let tree = try CASAFixtures.makeTree(in: dir)
        let casa = installation(home: home, version: "6.5.4-9", useXvfb: false)
        let first = try await runner(casa).run(tree.invocation(), reporter: SilentReporter())
        _ = FileManager.default.createFile(
            atPath: tree.products + "/errorexit-20240101T000000.txt", contents: Data("hifa_restoredata failed\n".utf8))
        let failed = CASASuccessCheck.evaluate(
            result: first, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(failed.error?.code == .casaErrorExit)
        #expect(failed.error?.message.contains("Reason: hifa_restoredata failed") == true)
        #expect(
            failed.error?.hint?.contains(first.casaLogs.first ?? "?") == true, "hint names the log with the SEVERE line"
        )

        // Nothing of the failed attempt may stick to the next one.
        try CASAFixtures.setBehaviour("succeed", home: home)
        let second = try await runner(casa).run(tree.invocation(), reporter: SilentReporter())
        let verdict = CASASuccessCheck.evaluate(
            result: second, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.isSuccess, "\(verdict.problems)")
        let archived = try FileManager.default.contentsOfDirectory(atPath: tree.working).filter {
            $0.hasPrefix("previous-attempt-")
        }
        #expect(archived.count == 1)
        let moved = try FileManager.default.contentsOfDirectory(atPath: tree.working + "/" + (archived.first ?? ""))
        #expect(moved.contains("errorexit-20240101T000000.txt"))
        #expect(moved.contains { $0.hasPrefix("casa-") && $0.hasSuffix(".log") })
    }
}
