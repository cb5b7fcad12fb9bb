import Foundation
import Testing
import DropboxTestKit

@testable import RestoreSteps

@Suite(
    "CASA process control: timeout and cancellation stop the whole group", .serialized, .timeLimit(.minutes(2)),
    .tags(.integration), .selected(.integration))
struct CASAProcessControlTests {
    let dir: String

    init() throws {
        dir = try CASAFixtures.temporaryDirectory("control")
    }

    func runner(home: String, useXvfb: Bool, grace: Duration = .seconds(2)) -> PipelineRunner {
        PipelineRunner(
            installation: CASAInstallation(
                name: "fake", kind: .pipeline, home: home, version: "6.5.4-9", useXvfb: useXvfb),
            gracePeriod: grace, logger: CASAFixtures.logger)
    }

    @Test(arguments: ["hang", "hang-stubborn"])
    func timeoutKillsTheWholeGroup(_ behaviour: String) async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: behaviour)
        let tree = try CASAFixtures.makeTree(in: dir)
        let started = ContinuousClock.now
        let result = try await runner(home: home, useXvfb: false).run(
            tree.invocation(timeout: .seconds(3)), reporter: SilentReporter())
        let elapsed = ContinuousClock.now - started

        #expect(result.timedOut)
        #expect(elapsed < .seconds(15), "timeout 3 s + grace 2 s, took \(elapsed)")
        if case .exited = result.exitStatus {
            Issue.record("a stopped CASA must not look like a normal exit: \(result.exitStatus)")
        }
        let grandchild = try #require(
            CASAFixtures.readInt(tree.logs + "/grandchild.pid"), "the fake never started its grandchild")
        #expect(!ProcessGroup.isAlive(grandchild), "grandchild \(grandchild) survived the timeout")
        #expect(
            !FileManager.default.fileExists(atPath: "/proc/\(grandchild)/stat") || !ProcessGroup.isAlive(grandchild))

        let verdict = CASASuccessCheck.evaluate(
            result: result, working: tree.working, products: tree.products, expectedAsdmNames: tree.asdmNames)
        #expect(verdict.error?.code == .casaTimedOut)
    }

    @Test func cancellationUnderRealXvfbStopsCasaXvfbAndGrandchild() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "hang")
        let tree = try CASAFixtures.makeTree(in: dir)
        let runner = runner(home: home, useXvfb: true)
        let invocation = tree.invocation(timeout: .seconds(600))
        let task = Task { try await runner.run(invocation, reporter: SilentReporter()) }

        let pidFile = tree.logs + "/grandchild.pid"
        let started = await CASAFixtures.waitFor(.seconds(30)) { CASAFixtures.readInt(pidFile) != nil }
        let output = (try? String(contentsOfFile: tree.logs + "/casa-stdout.log", encoding: .utf8)) ?? ""
        try #require(started, "the fake CASA did not start under xvfb-run:\n\(output)")
        let grandchild = try #require(CASAFixtures.readInt(pidFile))
        let pgid = try #require(ProcessGroup.stat(grandchild)?.pgrp)
        let members = ProcessGroup(id: pgid).livingMembers
        let commands = members.map { (try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? "" }
        #expect(commands.contains { $0.hasPrefix("Xvfb") }, "Xvfb should be in CASA's process group: \(commands)")
        #expect(members.count >= 4, "xvfb-run, Xvfb, casa, sleep: \(commands)")

        let cancelled = ContinuousClock.now
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(ContinuousClock.now - cancelled < .seconds(8), "cancellation must finish within a few seconds")
        for pid in members {
            #expect(!ProcessGroup.isAlive(pid), "process \(pid) survived cancellation")
        }
        #expect(ProcessGroup(id: pgid).livingMembers.isEmpty)
    }

    @Test func cancellationStopsAStubbornGrandchild() async throws {
        let home = try CASAFixtures.makeFakeHome(in: dir, version: "6.5.4-9", behaviour: "hang-stubborn")
        let tree = try CASAFixtures.makeTree(in: dir)
        let runner = runner(home: home, useXvfb: false, grace: .seconds(1))
        let invocation = tree.invocation(timeout: .seconds(600))
        let task = Task { try await runner.run(invocation, reporter: SilentReporter()) }
        let pidFile = tree.logs + "/grandchild.pid"
        try #require(await CASAFixtures.waitFor(.seconds(30)) { CASAFixtures.readInt(pidFile) != nil })
        let grandchild = try #require(CASAFixtures.readInt(pidFile))
        task.cancel()
        await #expect(throws: CancellationError.self) { _ = try await task.value }
        #expect(!ProcessGroup.isAlive(grandchild), "the SIGTERM-ignoring grandchild \(grandchild) survived")
    }
}
