internal import FoundationEssentials
internal import Logging
internal import Subprocess
internal import Synchronization
internal import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// One CASA process run: no shell, a clean environment, output streamed to a log, a time limit, and the whole
/// process group stopped on timeout, on cancellation and after the run (leftovers).
///
/// Built on swift-subprocess: `createSession = true` makes the child a session and process-group leader, and the
/// teardown sequence `SIGTERM to the group → grace → SIGKILL to the group` runs on task cancellation. Its teardown
/// stops as soon as the *leader* is gone, so after every run ``ProcessGroup/terminate(grace:)`` sweeps members that
/// outlived it (a grandchild that ignores SIGTERM, an `Xvfb` left behind).
struct CASAProcess: Sendable {
    /// Absolute path of the program.
    var executable: String
    /// Arguments after argv[0].
    var arguments: [String]
    /// The complete environment.
    var environment: [String: String]
    var workingDirectory: String
    /// Where standard output and standard error go (created/truncated).
    var stdoutLog: String
    var timeout: Duration
    /// Time between SIGTERM and SIGKILL.
    var gracePeriod: Duration

    struct Outcome: Sendable {
        var exitStatus: CASAExitStatus
        var timedOut: Bool
        var duration: Duration
    }

    private enum Event: Sendable {
        case finished(Result<CASAExitStatus, any Error>)
        case deadline
        case deadlineCancelled
    }

    /// Runs the process to its end. Throws `CancellationError` if the task was cancelled (after the group is gone).
    func run(reporter: any StepReporter, logger: Logger) async throws -> Outcome {
        try Task.checkCancellation()
        let header =
            "# dropbox-agent: argv: \(([executable] + arguments).joined(separator: " "))\n"
            + "# dropbox-agent: cwd: \(workingDirectory)\n"
            + "# dropbox-agent: env: \(environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))\n"
        guard FileManager.default.createFile(atPath: stdoutLog, contents: Data(header.utf8)) else {
            throw RestoreError(
                .casaFailed, "Cannot create the CASA output log \(stdoutLog).",
                hint: "Check that the logs directory exists and is writable.", step: .casa)
        }
        logger.info(
            "starting CASA",
            metadata: [
                "casa.argv": .array(([executable] + arguments).map { .string($0) }),
                "casa.cwd": .string(workingDirectory),
                "casa.env": .dictionary(environment.mapValues { .string($0) }),
                "casa.stdoutLog": .string(stdoutLog),
                "casa.timeout.seconds": .stringConvertible(timeout.logSeconds),
            ])

        let clock = ContinuousClock()
        let started = clock.now
        let leader = LeaderPID()
        let (result, timedOut) = await withTaskGroup(of: Event.self) { group in
            group.addTask {
                do {
                    return .finished(
                        .success(try await self.launch(leader: leader, reporter: reporter, logger: logger)))
                } catch {
                    return .finished(.failure(error))
                }
            }
            group.addTask {
                do {
                    try await Task.sleep(for: self.timeout)
                    return .deadline
                } catch {
                    return .deadlineCancelled
                }
            }
            var result: Result<CASAExitStatus, any Error> = .failure(CancellationError())
            var timedOut = false
            while let event = await group.next() {
                switch event {
                case .deadline:
                    timedOut = true
                    logger.warning(
                        "CASA ran past its time limit; stopping its process group",
                        metadata: ["casa.timeout.seconds": .stringConvertible(timeout.logSeconds)])
                    group.cancelAll()  // swift-subprocess runs the teardown sequence on cancellation
                case .deadlineCancelled:
                    continue
                case .finished(let outcome):
                    result = outcome
                    group.cancelAll()
                }
            }
            return (result, timedOut)
        }

        if let pid = leader.value {
            let survivors = await ProcessGroup(id: pid).terminate(grace: gracePeriod)
            if !survivors.isEmpty {
                logger.error(
                    "processes of the CASA group survived SIGKILL",
                    metadata: ["casa.pgid": .stringConvertible(pid), "casa.survivors": "\(survivors)"])
            }
        }
        let duration = clock.now - started

        let exitStatus: CASAExitStatus
        switch result {
        case .success(let status):
            exitStatus = status
        case .failure(let error as RestoreError):
            throw error
        case .failure(let error):
            if timedOut || Task.isCancelled {
                // Stopped by us before its status was collected.
                exitStatus = .signalled(SIGKILL)
            } else if leader.value == nil {
                throw RestoreError(
                    .casaFailed, "CASA could not be started (\(executable)): \(error)",
                    hint:
                        "Check the CASA installation and the agent configuration; the log \(stdoutLog) has the command.",
                    step: .casa)
            } else {
                throw RestoreError(
                    .casaFailed, "Lost track of the CASA process (\(executable)): \(error)",
                    hint: "This is unexpected; the log \(stdoutLog) has CASA's output.", step: .casa)
            }
        }
        logger.info(
            "CASA ended",
            metadata: [
                "casa.exitStatus": "\(exitStatus)", "casa.timedOut": .stringConvertible(timedOut),
                "casa.duration.seconds": .stringConvertible(duration.logSeconds),
            ])
        if Task.isCancelled && !timedOut { throw CancellationError() }
        return Outcome(exitStatus: exitStatus, timedOut: timedOut, duration: duration)
    }

    private func launch(leader: LeaderPID, reporter: any StepReporter, logger: Logger) async throws -> CASAExitStatus {
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: gracePeriod)]
        var env: [Environment.Key: String] = [:]
        for (key, value) in environment {
            if let key = Environment.Key(rawValue: key) { env[key] = value }
        }
        let logPath = stdoutLog
        let result = try await Subprocess.run(
            .path(FilePath(executable)),
            arguments: Arguments(arguments),
            environment: .custom(env),
            workingDirectory: FilePath(workingDirectory),
            platformOptions: options,
            input: .none,
            output: .sequence,
            error: .combinedWithOutput
        ) { execution in
            leader.set(execution.processIdentifier.value)
            let recorder = OutputRecorder(logPath: logPath, reporter: reporter, logger: logger)
            do {
                for try await buffer in execution.standardOutput {
                    buffer.withUnsafeBytes { recorder.append($0) }
                }
            } catch {
                // Cancellation (teardown follows) or a read error; the process is still waited for.
                logger.debug("stopped reading CASA output", metadata: ["error": "\(error)"])
            }
            recorder.finish()
        }
        switch result.terminationStatus {
        case .exited(let code): return .exited(code)
        case .signaled(let signal): return .signalled(signal)
        }
    }
}

/// The leader's pid, set once the process has started (read after the run for the group sweep).
final class LeaderPID: Sendable {
    private let storage = Mutex<pid_t?>(nil)
    func set(_ pid: pid_t) { storage.withLock { $0 = pid } }
    var value: pid_t? { storage.withLock { $0 } }
}

extension Duration {
    /// Seconds as a number, for log lines (numbers are JSON numbers, the unit is in the key).
    var logSeconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
}
