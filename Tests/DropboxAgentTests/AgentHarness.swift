import Foundation
import Logging
import RestoreSteps
import Synchronization
import Testing

@testable import DropboxAgent

/// Records which steps ran for which request (test-only steps report here).
final class StepLog: Sendable {
    private let entries = Mutex<[(request: String, step: StepName)]>([])
    func add(_ request: String, _ step: StepName) { entries.withLock { $0.append((request, step)) } }
    func steps(for request: String) -> [StepName] {
        entries.withLock { $0.filter { $0.request == request }.map(\.step) }
    }
    var count: Int { entries.withLock { $0.count } }
}

/// What a test step sees.
struct TestContext: Sendable {
    var job: ExecutionJob
    var log: StepLog
}

/// A test-only step: records itself, then does what the test says.
struct TestStep: PipelineStep {
    let name: StepName
    let log: StepLog
    let action: @Sendable (TestContext, any StepReporter) async throws -> Void

    func run(in context: TestContext, reporter: any StepReporter) async throws {
        log.add(context.job.name, name)
        try await action(context, reporter)
    }
}

/// A notifier that records what it was asked to send.
final class RecordingNotifier: Notifier {
    let sent = Mutex<[(state: RequestState, to: [String])]>([])
    func notify(
        _ status: StatusDocument, request: RestoreRequest, facts: [String: String]
    ) async -> [StatusDocument.Notification] {
        sent.withLock { $0.append((status.state, request.email)) }
        return request.email.map { .init(to: $0, state: "sent") }
    }
}

/// An in-process agent on a temporary spool, with test-only steps.
final class AgentHarness: Sendable {
    let root: String
    let spool: String
    let log = StepLog()
    let notifier = RecordingNotifier()
    let runtime: AgentRuntime
    private let stop = StopSignal()
    private let runTask = Mutex<Task<Void, any Error>?>(nil)

    /// - Parameter step: what every step does (default: nothing).
    init(
        settle: Double = 0.2, incompleteTimeout: Double = 3, leaseSeconds: Double = 30, maxConcurrent: Int = 1,
        maxPerDropper: Int = 0, allowedOwners: [String]? = nil, root: String? = nil, systemd: SystemdNotifier? = nil,
        step: @escaping @Sendable (StepName, TestContext, any StepReporter) async throws -> Void = { _, _, _ in }
    ) throws {
        let root =
            root ?? FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)").path
        self.root = root
        var c = AgentConfiguration(dataDirectory: root + "/data")
        c.spool.directory = root + "/spool"
        c.spool.settleSeconds = settle
        c.spool.incompleteTimeoutSeconds = incompleteTimeout
        c.spool.rescanIntervalSeconds = 1
        c.agent.leaseSeconds = leaseSeconds
        c.agent.maxConcurrentRestores = maxConcurrent
        c.agent.maxConcurrentPerDropper = maxPerDropper
        c.spool.allowedOwners = allowedOwners
        c.agent.shutdownGraceSeconds = 5
        c = c.resolved(relativeTo: root)
        spool = c.spool.directory!
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: true)
        let log = self.log
        let steps: [any PipelineStep<TestContext>] = StepName.allCases.map { name in
            TestStep(name: name, log: log) { context, reporter in try await step(name, context, reporter) }
        }
        let executor = PipelineExecutor<TestContext>(
            makeContext: { TestContext(job: $0, log: log) },
            pipeline: RestorePipeline(steps: steps),
            result: { _ in
                ExecutionResult(
                    result: .init(deliveryPath: root + "/out", url: nil, measurementSets: ["x.ms"], sizeBytes: 1))
            },
            clean: { _, _ in })
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        var runtime = try AgentRuntime(configuration: c, logger: logger, executor: executor, notifier: notifier)
        if let systemd { runtime.systemd = systemd }
        self.runtime = runtime
    }

    func start() {
        let runtime = self.runtime
        let stop = self.stop
        let task = Task {
            try await runtime.run { await stop.wait() }
        }
        runTask.withLock { $0 = task }
    }

    /// Stops like SIGTERM does and waits for the runtime to return.
    func shutdown() async throws {
        stop.fire()
        try await runTask.withLock { $0 }?.value
    }

    func write(_ name: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: spool + "/" + name))
    }

    /// Writes under a dot-name and renames into place, as rsync and `submit` do.
    func drop(_ name: String, _ text: String) throws {
        try write(".\(name).tmp", text)
        guard rename(spool + "/.\(name).tmp", spool + "/" + name) == 0 else {
            throw SystemCallError(call: "rename", path: name, errno: errno)
        }
    }

    func status(_ name: String) -> StatusDocument? {
        StatusPublisher.existing(at: spool + "/" + SpoolNames.statusFile(for: name))
    }

    /// Polls the status file until `predicate` holds or the deadline passes.
    @discardableResult
    func waitForStatus(
        _ name: String, timeout: Double = 60, _ predicate: (StatusDocument) -> Bool
    ) async throws -> StatusDocument {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let s = status(name), predicate(s) { return s }
            try await Task.sleep(for: .milliseconds(20))
        }
        let last = status(name)
        Issue.record(
            "status of \(name) did not reach the expected condition; last: \(last.map { "\($0.state) \($0.error?.message ?? "")" } ?? "none")"
        )
        throw CancellationError()
    }

    func waitForState(_ name: String, _ state: RequestState, timeout: Double = 60) async throws -> StatusDocument {
        try await waitForStatus(name, timeout: timeout) { $0.state == state }
    }

    static let validRequest = #"{"mous": "uid://A001/X1284/X265f", "email": ["pi@example.org"]}"#
}

/// Resumes the runtime's stop closure once, whether `fire` comes before or after `wait`.
final class StopSignal: Sendable {
    private let gate = Gate()
    func wait() async { await gate.wait() }
    func fire() { gate.open() }
}
