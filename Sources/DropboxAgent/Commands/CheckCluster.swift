import FoundationEssentials
import Glibc
import RestoreSteps

extension CheckCommand {
    /// The execution backend: local, or slurm with its commands on PATH (the cluster itself: `--cluster`).
    func checkExecution(_ c: AgentConfiguration, _ r: inout CheckReport) {
        switch c.execution.backend {
        case .local:
            r.ok("execution", "local: CASA runs on this host, detached from the agent")
        case .slurm:
            let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
            let missing = ["sbatch", "squeue", "scontrol", "scancel"].filter { name in
                !path.split(separator: ":").contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(name)") }
            }
            if missing.isEmpty {
                r.ok(
                    "execution",
                    "slurm: \(c.execution.slurm.partition.map { "partition \($0)" } ?? "default partition")"
                        + (ProcessInfo.processInfo.environment["SLURM_CONF"].map { ", SLURM_CONF=\($0)" } ?? "")
                        + " (check --cluster submits a probe job)")
            } else {
                r.fail(
                    "execution", "slurm: \(missing.joined(separator: ", ")) not found on PATH (install slurm-client)")
            }
        }
    }

    /// `check --cluster`: the directories a batch job needs (restore directory writable; CASA program directory
    /// with `run_job.sh`; the CASA installations) exist here, then a probe job on a node sees them and writes into
    /// the restore directory (``ClusterProbe``).
    func checkCluster(_ c: AgentConfiguration, _ r: inout CheckReport) async {
        let fm = FileManager.default
        let restores = c.agent.restoreDirectory!
        var needed: [String] = [restores]
        if c.execution.backend != .slurm {
            r.warn(
                "cluster",
                "execution.backend is \(c.execution.backend.rawValue): the restores do not use the cluster checked here"
            )
        }
        guard let programDir = c.casa.programDirectory else {
            r.fail("cluster", "casa.programDirectory is not known: the job script run_job.sh cannot be found")
            return
        }
        let script = programDir + "/run_job.sh"
        guard fm.isExecutableFile(atPath: script) else {
            r.fail("cluster", "\(script) is missing or not executable")
            return
        }
        needed.append(programDir)
        needed += ProductionExecutor.casaInstallations(c).map(\.home).filter { fm.fileExists(atPath: $0) }
        for dir in needed {
            var isDir = false
            guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir else {
                r.fail("cluster", "\(dir) does not exist on this host")
                return
            }
        }
        guard fm.isWritableFile(atPath: restores) else {
            r.fail("cluster", "\(restores) (agent.restoreDirectory) is not writable")
            return
        }
        let scheduler = SlurmScheduler(settings: c.execution.slurm.settings)
        let outcome = await ClusterProbe.run(
            scheduler: scheduler, jobScript: script, scratch: restores + "/.dropbox-agent-cluster-check-\(getpid())",
            directories: needed, timeout: .seconds(120))
        if outcome.ok { r.ok("cluster", outcome.detail) } else { r.fail("cluster", outcome.detail) }
    }
}
