import Foundation
import Testing

@testable import RestoreSteps

/// The local backend's scheduler with real processes: the job script of the repository (`casa/run_job.sh`), run
/// detached by `setsid`, found by name, followed by pid + start time, cancelled by its process group.
@Suite("local scheduler: detached jobs on this host", .serialized, .timeLimit(.minutes(2)))
struct LocalSchedulerTests {
    static let jobScript: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // ExecutionTests, RestoreStepsTests, Tests
        return url.appendingPathComponent("casa/run_job.sh").path
    }()

    let dir: String
    let scheduler = LocalScheduler(grace: .seconds(2), logger: CASAFixtures.logger)

    init() throws { dir = try CASAFixtures.temporaryDirectory("local") }

    func spec(_ name: String, _ program: [String]) -> BatchJobSpec {
        BatchJobSpec(
            name: name, script: Self.jobScript,
            arguments: ["\(dir)/\(name).exit.json", "\(dir)/\(name).log"] + program,
            workingDirectory: dir, output: "\(dir)/\(name).out", timeLimitSeconds: 60)
    }

    func until(_ what: String, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !(await condition()) {
            guard ContinuousClock.now < deadline else {
                Issue.record("timed out waiting for \(what)")
                return
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    @Test("a job runs detached, is found by its name, ends with an exit record")
    func runsAndEnds() async throws {
        // The job runs until the test lets it go (a file appears), so "running" is observed without a race.
        let release = "\(dir)/dropbox-t-1.go"
        let id = try await scheduler.submit(
            spec(
                "dropbox-t-1",
                [
                    "/bin/sh", "-c", "echo PROGRESS 1 2 half; while [ ! -e \"$1\" ]; do sleep 0.05; done; exit 3", "sh",
                    release,
                ]))
        let parts = id.split(separator: ":")
        #expect(parts.count == 3 && String(parts[0]) == LocalScheduler.hostName)
        #expect(try await scheduler.jobs(named: "dropbox-t-1") == [id])
        #expect(try await scheduler.state(of: id)?.phase == .running)
        #expect(FileManager.default.createFile(atPath: release, contents: nil))
        try await until("the exit record") { JobExitRecord.read("\(dir)/dropbox-t-1.exit.json") != nil }
        #expect(JobExitRecord.read("\(dir)/dropbox-t-1.exit.json")?.exitStatus == .exited(3))
        try await until("the job ended") { (try? await scheduler.state(of: id))?.phase == .ended }
        #expect(try String(contentsOfFile: "\(dir)/dropbox-t-1.log", encoding: .utf8).contains("PROGRESS 1 2 half"))
        #expect(try await scheduler.jobs(named: "dropbox-t-1").isEmpty)
    }

    @Test("cancel stops the whole process group; a reused pid (other start time) or another host's id is not the job")
    func cancel() async throws {
        let id = try await scheduler.submit(spec("dropbox-t-2", ["/bin/sh", "-c", "sleep 300 & sleep 300; wait"]))
        let pid = Int32(id.split(separator: ":")[1])!
        try await until("the children of \(id): \(ProcessGroup(id: pid).livingMembers)") {
            ProcessGroup(id: pid).livingMembers.count >= 3
        }
        try await scheduler.cancel(id)
        #expect(ProcessGroup(id: pid).livingMembers.isEmpty)
        #expect(try await scheduler.state(of: id)?.phase == .ended)
        let start = id.split(separator: ":")[2]
        #expect(
            try await scheduler.state(of: "\(LocalScheduler.hostName):\(getpid()):1\(start)")?.phase == .ended,
            "same pid, other start time")
        #expect(
            try await scheduler.state(of: "other-host:\(getpid()):\(start)") == nil,
            "another host's job is not ours to judge")
    }

    @Test("waitForEnd returns when the job's process ends, not at the end of the limit; waits while it runs")
    func waitForEnd() async throws {
        // A name of this run's own: jobs are found by name across the host, and another run of this suite may be
        // under way beside this one.
        let name = "dropbox-t-3-\(getpid())"
        let release = "\(dir)/\(name).go"
        let id = try await scheduler.submit(
            spec(
                name,
                ["/bin/sh", "-c", "while [ ! -e \"$1\" ]; do sleep 0.05; done; exit 0", "sh", release]))
        let clock = ContinuousClock()
        // While the job runs, the wait lasts its limit (it says nothing about the job, only that it may look again).
        var started = clock.now
        await scheduler.waitForEnd(of: id, upTo: .milliseconds(300))
        #expect(clock.now - started >= .milliseconds(250))
        #expect(try await scheduler.state(of: id)?.phase == .running)
        // Once it ends, a wait of up to a minute returns as soon as the process has gone (generous bound for a
        // loaded machine, far below the limit).
        #expect(FileManager.default.createFile(atPath: release, contents: nil))
        started = clock.now
        await scheduler.waitForEnd(of: id, upTo: .seconds(60))
        #expect(clock.now - started < .seconds(30))
        try await until("the job ended") { (try? await scheduler.state(of: id))?.phase == .ended }
        // An id that is no live process of this host (another host's; this job, ended): the wait is the plain
        // limit, so a follower whose exit record lags behind never spins.
        for gone in ["other-host:1:1", id] {
            started = clock.now
            await scheduler.waitForEnd(of: gone, upTo: .milliseconds(100))
            #expect(clock.now - started >= .milliseconds(90), "\(gone)")
        }
    }
}
