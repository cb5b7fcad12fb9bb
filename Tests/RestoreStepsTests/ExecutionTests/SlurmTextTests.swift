import Foundation
import Testing

@testable import RestoreSteps

@Suite("Slurm: sbatch argv, answers and states (pure)")
struct SlurmTextTests {
    let job = BatchJobSpec(
        name: "dropbox-req.1-1", script: "/opt/casa/run_job.sh",
        arguments: ["/w/logs/x.exit.json", "/w/logs/casa-stdout.log", "/usr/bin/env", "-i", "A=b c", "prog"],
        workingDirectory: "/w/working", output: "/w/logs/x.out", timeLimitSeconds: 3601)

    @Test(
        "argv: options first, configured resources, extra arguments verbatim, then the script and its arguments unchanged"
    )
    func argv() {
        let settings = SlurmSettings(
            partition: "long", account: "alma", cpusPerTask: 4, memory: "16G",
            extraArguments: ["--qos=low", "--constraint=ssd; rm -rf /"])
        let argv = SlurmText.sbatchArguments(job, settings: settings)
        #expect(argv.prefix(2) == ["--parsable", "--job-name=dropbox-req.1-1"])
        for option in [
            "--chdir=/w/working", "--output=/w/logs/x.out", "--no-requeue", "--partition=long", "--account=alma",
            "--cpus-per-task=4", "--mem=16G", "--time=61",
        ] {
            #expect(argv.contains(option), "\(option) in \(argv)")
        }
        let script = argv.firstIndex(of: "/opt/casa/run_job.sh") ?? 2
        #expect(
            Array(argv[(script - 2)..<script]) == ["--qos=low", "--constraint=ssd; rm -rf /"],
            "extra arguments are single argv elements, before the script")
        #expect(Array(argv[(script + 1)...]) == job.arguments)
    }

    @Test("a configured time limit wins; unset resources are left to the cluster")
    func defaults() {
        let argv = SlurmText.sbatchArguments(job, settings: SlurmSettings(timeLimit: "2-00:00:00"))
        #expect(argv.contains("--time=2-00:00:00"))
        #expect(
            !argv.contains {
                $0.hasPrefix("--partition") || $0.hasPrefix("--mem") || $0.hasPrefix("--cpus-per-task")
                    || $0.hasPrefix("--account")
            })
    }

    @Test(
        "time limits are whole minutes, rounded up",
        arguments: [(1, "1"), (60, "1"), (61, "2"), (48 * 3600, "2880"), (0, "1")])
    func minutes(seconds: Int, expected: String) {
        #expect(SlurmText.timeLimit(seconds: seconds) == expected)
    }

    @Test(
        "sbatch --parsable answers",
        arguments: [
            ("123\n", "123"), ("456;cluster\n", "456"), ("sbatch: warning: x\n789\n", "789"), ("", nil),
            ("error\n", nil),
        ] as [(String, String?)])
    func parsable(output: String, id: String?) {
        #expect(SlurmText.parsableJobId(output) == id)
    }

    @Test("job names are derived from the restore id and the submission, in a safe alphabet")
    func names() {
        #expect(
            SlurmText.jobName(restoreId: "req.20261205T081951.vm.19267.1", submission: 2)
                == "dropbox-req.20261205T081951.vm.19267.1-2")
        #expect(SlurmText.jobName(restoreId: "a b/c$é", submission: 1) == "dropbox-a_b_c__-1")
    }

    @Test("scontrol show job -o: state, reason, exit code, times")
    func scontrol() throws {
        let line =
            "JobId=7 JobName=dropbox-x-1 UserId=root(0) JobState=TIMEOUT Reason=TimeLimit Dependency=(null) Requeue=0 ExitCode=0:15 RunTime=00:01:05 TimeLimit=00:01:00 Command=/opt/casa/run_job.sh"
        let state = try #require(SlurmText.state(scontrolLine: line))
        #expect(state.phase == .stopped(.timeLimit))
        #expect(state.summary == "TIMEOUT (reason TimeLimit, exit code 0:15, run time 00:01:05 of 00:01:00)")
        #expect(SlurmText.state(scontrolLine: "slurm_load_jobs error: Invalid job id specified") == nil)
    }

    @Test("sacct -P lines")
    func sacct() throws {
        let state = try #require(SlurmText.state(sacctLine: "12|CANCELLED by 0|0:15"))
        #expect(state.state == "CANCELLED" && state.phase == .stopped(.cancelled) && state.reason == "CANCELLED by 0")
        #expect(SlurmText.state(sacctLine: "garbage") == nil)
    }

    @Test(
        "Slurm states as phases; only node failure and preemption are retried",
        arguments: [
            ("PENDING", BatchJobPhase.pending), ("REQUEUED", .pending), ("RUNNING", .running), ("COMPLETING", .running),
            ("COMPLETED", .ended), ("FAILED", .ended), ("TIMEOUT", .stopped(.timeLimit)),
            ("OUT_OF_MEMORY", .stopped(.outOfMemory)),
            ("NODE_FAIL", .stopped(.nodeFailure)), ("BOOT_FAIL", .stopped(.nodeFailure)),
            ("PREEMPTED", .stopped(.preempted)),
            ("CANCELLED", .stopped(.cancelled)), ("REVOKED", .stopped(.other)),
        ])
    func phases(state: String, phase: BatchJobPhase) {
        #expect(SlurmText.phase(state) == phase)
        if case .stopped(let cause) = phase {
            #expect(cause.isRetryable == (cause == .nodeFailure || cause == .preempted))
        }
    }

    @Test("exit records: status, death by signal")
    func exitRecords() throws {
        let dir = NSTemporaryDirectory() + "exit-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data(#"{"status": 143, "host": "n1", "started": 10, "ended": 25}"#.utf8).write(
            to: URL(fileURLWithPath: dir + "/a"))
        try Data(#"{"status": 1"#.utf8).write(to: URL(fileURLWithPath: dir + "/torn"))
        let record = try #require(JobExitRecord.read(dir + "/a"))
        #expect(record.exitStatus == .signalled(15) && record.host == "n1")
        #expect(JobExitRecord.read(dir + "/torn") == nil)
        #expect(JobExitRecord.read(dir + "/missing") == nil)
        #expect(ScheduledRunner.exitStatus(schedulerExitCode: "3:0") == .exited(3))
        #expect(ScheduledRunner.exitStatus(schedulerExitCode: "0:9") == .signalled(9))
    }

    @Test("progress is read from where the last read stopped, and a partial line waits for its end")
    func progress() throws {
        let path = NSTemporaryDirectory() + "progress-\(UUID().uuidString).log"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("# header\nPROGRESS 1 9 preflight ok\nPROGRESS 2 9 EB a: imp".utf8).write(
            to: URL(fileURLWithPath: path))
        var follower = ProgressFollower(path: path)
        #expect(follower.poll()?.message == "preflight ok")
        #expect(follower.poll() == nil)
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("ortasdm (0/2 EBs done)\nnoise\n".utf8))
        try handle.close()
        let latest = follower.poll()
        #expect(latest?.message == "EB a: importasdm (0/2 EBs done)" && latest?.fraction == 2.0 / 9.0)
    }

    @Test("slurmstepd's memory-kill line is the reason; other output is not")
    func memoryKill() {
        let output = """
            run_job.sh: starting
            slurmstepd-ci-node: error: StepId=2.batch exceeded memory limit (324382720 > 104857600), being killed
            slurmstepd-ci-node: error: Exceeded job memory limit
            slurmstepd-ci-node: error: *** JOB 2 ON ci-node CANCELLED AT 2026-12-05T11:16:53 ***
            """
        #expect(
            SlurmText.memoryKill(jobOutput: output)
                == "slurmstepd-ci-node: error: StepId=2.batch exceeded memory limit (324382720 > 104857600), being killed"
        )
        #expect(SlurmText.memoryKill(jobOutput: "PROGRESS 0.5 EB 1: exceeded memory limit in my data\nok") == nil)
        #expect(
            SlurmText.memoryKill(
                jobOutput: "slurmstepd-ci-node: error: *** JOB 3 ON ci-node CANCELLED AT 2026 DUE TO PREEMPTION ***")
                == nil)
    }

    @Test("memory from the plan: 512 MiB + parallel × (1 GiB + largest ASDM ÷ 10), parallel at most the EB count")
    func memoryFromThePlan() {
        let gib: Int64 = 1 << 30
        #expect(SlurmResources.memory(asdmBytes: [1000, 2000], parallel: 2) == "\(512 + 2 * 1025)M")
        #expect(
            SlurmResources.memory(asdmBytes: [10 * gib, 20 * gib, 5 * gib, gib], parallel: 2)
                == "\(512 + 2 * (1024 + 2048))M")
        #expect(
            SlurmResources.memory(asdmBytes: [10 * gib], parallel: 8) == "\(512 + 1024 + 1024)M", "one EB: one process")
        #expect(SlurmResources.memory(asdmBytes: [], parallel: 0) == "\(512 + 1024)M")
    }
}
