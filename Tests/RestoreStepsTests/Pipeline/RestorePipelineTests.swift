import RestoreSteps
import Synchronization
import Testing
import DropboxTestKit

/// A test-only step that records itself and does what it is told.
private struct ScriptedStep: PipelineStep {
    typealias Context = Recorder
    let name: StepName
    let behaviour: @Sendable () async throws -> Void
    func run(in context: Recorder, reporter: any StepReporter) async throws {
        context.record("run \(name.rawValue)")
        reporter.report(StepProgress(bytesDone: 1, bytesTotal: 2))
        try await behaviour()
    }
}

private final class Recorder: PipelineObserver, StepReporter, Sendable {
    let events = Mutex<[String]>([])
    let failOnStart: StepName?
    init(failOnStart: StepName? = nil) { self.failOnStart = failOnStart }
    func record(_ e: String) { events.withLock { $0.append(e) } }
    func stepWillStart(_ step: StepName) async throws {
        if step == failOnStart { throw CancellationError() }
        record("start \(step.rawValue)")
    }
    func stepDidComplete(_ step: StepName) async throws { record("done \(step.rawValue)") }
    func report(_ progress: StepProgress) { record("progress \(progress.fraction ?? -1)") }
    var log: [String] { events.withLock { $0 } }
}

private func pipeline(_ behaviours: [StepName: @Sendable () async throws -> Void] = [:]) -> RestorePipeline<Recorder> {
    RestorePipeline(
        steps: StepName.allCases.map { name in ScriptedStep(name: name, behaviour: behaviours[name] ?? {}) })
}

@Suite(.tags(.integration), .selected(.integration)) struct RestorePipelineTests {
    @Test func runsTheSixStepsInOrderAndRecordsEachBeforeMovingOn() async {
        let r = Recorder()
        let outcome = await pipeline().run(r, observer: r, reporter: r)
        #expect(outcome == .succeeded)
        let expected = StepName.allCases.flatMap {
            ["start \($0.rawValue)", "run \($0.rawValue)", "progress 0.5", "done \($0.rawValue)"]
        }
        #expect(r.log == expected)
        #expect(StepName.allCases.map(\.number) == [1, 2, 3, 4, 5, 6])
        #expect(StepName(number: 5) == .casa && StepName(number: 7) == nil)
    }

    @Test func resumesAfterTheCompletedSteps() async {
        let r = Recorder()
        let outcome = await pipeline().run(r, completed: [.prepare, .rawdata, .calibration], observer: r, reporter: r)
        #expect(outcome == .succeeded)
        #expect(r.log.filter { $0.hasPrefix("run") } == ["run ppr", "run casa", "run deliver"])
    }

    @Test func aFailingStepStopsThePipelineAndIsNamed() async {
        let r = Recorder()
        let outcome = await pipeline([.calibration: { throw RestoreError("manifestMissingSession", "no session_2") }])
            .run(r, observer: r, reporter: r)
        guard case .failed(let error) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(error.code == "manifestMissingSession")
        #expect(error.step == .calibration)
        #expect(!r.log.contains("run ppr"))
        #expect(!r.log.contains("done calibration"))
    }

    @Test func anUnexpectedErrorBecomesAnInternalErrorOfThatStep() async {
        struct Boom: Error {}
        let r = Recorder()
        let outcome = await pipeline([.ppr: { throw Boom() }]).run(r, observer: r, reporter: r)
        guard case .failed(let error) = outcome else {
            Issue.record("\(outcome)")
            return
        }
        #expect(error.code == .internalError && error.step == .ppr)
    }

    @Test func cancellationDuringAStepEndsAsCancelled() async {
        let r = Recorder()
        let task = Task {
            await pipeline([.casa: { try await Task.sleep(for: .seconds(30)) }]).run(r, observer: r, reporter: r)
        }
        while !r.log.contains("run casa") { try? await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        let outcome = await task.value
        #expect(outcome == .cancelled(at: .casa))
        #expect(!r.log.contains("done casa"))
    }

    @Test func anObserverThatRefusesStopsBeforeTheStepRuns() async {
        let r = Recorder(failOnStart: .ppr)
        let outcome = await pipeline().run(r, observer: r, reporter: r)
        #expect(outcome == .cancelled(at: .ppr))
        #expect(!r.log.contains("run ppr"))
    }
}
